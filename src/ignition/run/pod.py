"""`ignition start`: bring the pod up, keep it up, bring it down. The container's entrypoint.

0. Logging to stdout and IGNITION_STARTUP_LOG (secrets masked); control socket up, so
   `ignition status|restart|stop` work from the first second.
1. System check (GPU, disk, RAM; torch/CUDA in the background, as importing torch takes
   seconds that ComfyUI's own boot should not wait for). Advisory: warns, never stops.
2. Privacy (hosts blocklist, opt-out env for children) and storage (extra ComfyUI args).
   A failure here is logged and the pod comes up without it.
3. Helper scripts in /workspace/scripts and `nuke` on PATH; ComfyUI-Manager's config.ini.
4. File browser and front door start; custom node packs are provisioned, because ComfyUI
   imports them only when it boots; then ComfyUI starts while models download concurrently
   (WAIT_FOR_MODELS=true: ComfyUI waits for the downloads, finished or failed). Packs still
   busy after IGNITION_NODES_WAIT_S (600 s; a slow clone) get ComfyUI started without them
   and one soft restart when they land, logged, never more.
5. Run until `ignition stop`, SIGTERM or SIGINT → hard stop: children stopped (SIGTERM, SIGKILL
   after a grace), nuke if ComfyUI was ready at some point and NUKE_ON_STOP is true, exit 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

from ignition import __version__, credentials
from ignition.errors import IgnitionError
from ignition.run import comfyui, control
from ignition.run.child_env import basic_env
from ignition.run.manager_config import write_manager_config
from ignition.run.pod_scripts import write_pod_scripts
from ignition.run.service import ServiceSpec
from ignition.run.startup_log import (
    ANNOUNCEMENT,
    StartupLog,
    configure_startup_logging,
    known_secrets,
)
from ignition.run.steps import SideService, Steps, advisory, provision_models, provision_packs
from ignition.run.supervisor import Service, Supervisor
from ignition.run.system_check import check_system, check_torch
from ignition.settings import Settings

log = logging.getLogger("ignition.run")
_T = TypeVar("_T")


class Pod:
    def __init__(self, settings: Settings, steps: Steps, startup_log: StartupLog) -> None:
        self.settings = settings
        self.startup_log = startup_log
        self.steps = steps
        self.manager_ui = settings.enable_manager_ui
        self.state: Literal["starting", "running", "stopping"] = "starting"
        self.downloads: Literal["pending", "running", "done", "failed"] = "pending"
        self.nodes: Literal["pending", "running", "done", "failed"] = "pending"
        self.node_packs: list[dict[str, Any]] = []
        self._comfyui_launched = False
        self.started_at = time.time()
        self.stop_requested = asyncio.Event()
        self.nuke_report = ""
        self._stopped = asyncio.Event()
        self._extra_comfyui_args: tuple[str, ...] = ()
        self._access: list[str] = []  # the access block's lines, secrets in clear
        self._tasks: list[asyncio.Task[Any]] = []
        # Each child's environment starts from an allow-list, never a copy of ours.
        self.supervisor = Supervisor(
            basic_env(settings), redact=startup_log.mask, first_delay_s=settings.restart_delay_s
        )

    # --- the sequence ---------------------------------------------------------------------------

    async def bring_up(self) -> None:
        log.info("ignition %s: starting the pod", __version__)
        await self._check_system()
        self._prepare_privacy_and_storage()
        self._write_helpers()
        await self._start_services_and_downloads()
        self.state = "running"

    async def _check_system(self) -> None:
        refused = credentials.refusal_warnings(self.settings)
        for warning in [*self.settings.unresolved_secret_warnings(), *refused]:
            log.warning("%s", warning)
        await check_system(self.settings)
        self._torch_check = asyncio.create_task(check_torch(self.settings))
        self._tasks.append(self._torch_check)

    def _prepare_privacy_and_storage(self) -> None:
        no_env: Mapping[str, str] = {}
        privacy_env = self._advisory("privacy", self.steps.prepare_privacy, no_env)
        self.supervisor.base_env.update(privacy_env)
        self._extra_comfyui_args = tuple(self._advisory("storage", self.steps.prepare_storage, ()))

    def _write_helpers(self) -> None:
        # A reboot request left by an earlier life of this run dir is not this ComfyUI's.
        comfyui.reboot_marker(self.settings).unlink(missing_ok=True)
        no_paths: list[Path] = []
        written = self._advisory("scripts", write_pod_scripts, no_paths)
        log.info("scripts: %s", ", ".join(str(path) for path in written))
        for flag in comfyui.overridden_flags(self.settings):
            log.warning("COMFY_FLAGS sets %s, which Ignition sets itself; yours is ignored", flag)

    async def _start_services_and_downloads(self) -> None:
        settings = self.settings
        no_services: Sequence[SideService] = ()
        side = self._advisory("services", self.steps.side_services, no_services)
        no_lines: Sequence[str] = ()
        access = self._advisory("access", self.steps.comfyui_access, no_lines)
        # Both may have generated a password or token: from here on those are masked too.
        self.startup_log.add_secrets(known_secrets(settings))
        for service in side:
            self.supervisor.add(Service(service.name, service.build))
            self.supervisor.launch(service.name)
        self._access = [*access, *(line for s in side for line in s.announcement)]
        self.supervisor.add(
            Service(comfyui.NAME, self._comfyui_spec, reboot_marker=comfyui.reboot_marker(settings))
        )
        self._tasks.append(asyncio.create_task(self._monitor()))
        downloads = asyncio.create_task(self._provision())
        self._tasks.append(downloads)
        nodes = asyncio.create_task(self._provision_nodes())
        self._tasks.append(nodes)
        # A warm start takes milliseconds; a cold one the time the packs take, up to the limit.
        await asyncio.wait({nodes}, timeout=settings.nodes_wait_s)
        if not nodes.done():
            log.warning(
                "nodes: still busy after %g s: ComfyUI starts without them, and restarts once "
                "when they are in place",
                settings.nodes_wait_s,
            )
        self._tasks.append(asyncio.create_task(self._announce_when_up(downloads)))
        if settings.wait_for_models:
            log.info("WAIT_FOR_MODELS=true: ComfyUI starts once the downloads are finished")
            await asyncio.wait({downloads})
        self._comfyui_launched = True
        self.supervisor.launch(comfyui.NAME)

    async def _announce_when_up(self, downloads: asyncio.Task[None]) -> None:
        """The access block, once every service is up (or has given up): the last thing in the
        container log, where RunPod's viewer shows it. If the downloads outlast the services,
        it is shown again when they end, so it stays last."""
        # With WAIT_FOR_MODELS, ComfyUI waits for the downloads: the file browser's login is
        # needed meanwhile (to watch them), so the first block does not wait for ComfyUI.
        waiting_ok = self.settings.wait_for_models
        await _settled(
            self.supervisor, self._torch_check, lambda: waiting_ok and not downloads.done()
        )
        self._print_access_block()
        if not downloads.done():
            await asyncio.wait({downloads})
            await _settled(self.supervisor, self._torch_check, lambda: False)
            self._print_access_block()

    def _print_access_block(self) -> None:
        down = [n for n, s in self.supervisor.services.items() if s.state == "failed"]
        waiting = any(s.state == "waiting" for s in self.supervisor.services.values())
        models = {
            "pending": "not started yet",
            "running": "still downloading (`ignition status` shows progress)",
            "done": "all in place",
            "failed": "some failed (see the lines above, or `ignition status`)",
        }[self.downloads]
        _announce(
            [
                _RULE,
                "Ignition is up. How to reach this pod:",
                *self._access,
                f"Models: {models}",
                *([f"Down: {', '.join(down)} (see above; `ignition restart`)"] if down else []),
                *(
                    ["ComfyUI starts once the downloads end (WAIT_FOR_MODELS=true)"]
                    if waiting
                    else []
                ),
                _RULE,
            ]
        )

    async def hard_stop(self) -> None:
        self.state = "stopping"
        log.info("hard stop: stopping every service")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.supervisor.stop_all()
        self.nuke_report = await self._nuke_if_due()
        log.info("hard stop: done after %.1f s of uptime", time.time() - self.started_at)
        self._stopped.set()

    async def _nuke_if_due(self) -> str:
        comfy = self.supervisor.services.get(comfyui.NAME)
        if comfy is None or not comfy.ever_ready:
            log.info("hard stop: no nuke: ComfyUI never became ready (data kept for debugging)")
            return "not run: ComfyUI never became ready (data kept for debugging)"
        if not self.settings.nuke_on_stop:
            log.info("hard stop: no nuke: NUKE_ON_STOP=false")
            return "not run: NUKE_ON_STOP=false"
        log.info("hard stop: running the nuke")
        try:
            lines = await asyncio.to_thread(self.steps.nuke, self.settings)
        except (OSError, IgnitionError) as error:
            log.error("hard stop: nuke failed: %s", error)
            return f"failed: {error}"
        except Exception as error:  # a nuke bug must not stop the shutdown
            log.error("hard stop: nuke failed unexpectedly: %r", error)
            return f"failed: {error!r}"
        for line in lines:
            log.info("nuke: %s", line)
        return lines[-1].strip() if lines else "done"

    # --- control channel -------------------------------------------------------------------------

    async def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        command = message.get("command")
        if command == "ping":
            return {"ok": True}
        if command == "status":
            return {"ok": True, "status": self.status()}
        if command == "stop":
            self.stop_requested.set()
            await self._stopped.wait()
            return {"ok": True, "nuke": self.nuke_report}
        if command == "restart":
            if message.get("logout") is True:
                await self._log_everyone_out()
            return await self._restart(message.get("manager_ui"))
        return {"ok": False, "error": f"unknown command {command!r}"}

    async def _log_everyone_out(self) -> None:
        """A new session key, and the front door restarted with it: every cookie stops working."""
        credentials.rotate_session_key(self.settings)
        log.info("front door: new session key; every browser must log in again")
        if "frontdoor" in self.supervisor.services:
            await self.supervisor.restart("frontdoor")

    async def _restart(self, manager_ui: object) -> dict[str, Any]:
        comfy = self.supervisor.services.get(comfyui.NAME)
        if self.state == "stopping":
            return {"ok": False, "error": "the pod is stopping"}
        if comfy is None or comfy.state == "waiting":
            return {"ok": False, "error": "ComfyUI has not been started yet (still starting up)"}
        if isinstance(manager_ui, bool):
            self.manager_ui = manager_ui
        pid = await self.supervisor.restart(comfyui.NAME)
        if pid is None:
            return {"ok": False, "error": comfy.error or "ComfyUI did not start"}
        return {"ok": True, "pid": pid, "manager_ui": self.manager_ui}

    def status(self) -> dict[str, Any]:
        settings = self.settings
        return {
            "supervisor": {
                "pid": os.getpid(),
                "version": __version__,
                "state": self.state,
                "uptime_s": round(time.time() - self.started_at, 1),
            },
            "services": {
                name: service.snapshot() for name, service in self.supervisor.services.items()
            },
            "downloads": {"state": self.downloads},
            "nodes": {"state": self.nodes, "packs": self.node_packs},
            "ports": {"comfyui": settings.comfyui_port, "filebrowser": settings.filebrowser_port},
            "manager_ui": self.manager_ui,
            "wait_for_models": settings.wait_for_models,
            "nuke_on_stop": settings.nuke_on_stop,
        }

    # --- helpers ----------------------------------------------------------------------------------

    def _comfyui_spec(self) -> ServiceSpec:
        """Built at every (re)start: a Manager toggle applies on the next soft restart."""
        comfyui.prepare_base_directory(self.settings)
        write_manager_config(self.settings, ui_enabled=self.manager_ui)
        return comfyui.comfyui_service(
            self.settings,
            listen=self.steps.comfyui_listen(self.settings),
            ui_enabled=self.manager_ui,
            extra_args=self._extra_comfyui_args,
        )

    def _advisory(self, what: str, step: Callable[[Settings], _T], fallback: _T) -> _T:
        return advisory(self.settings, what, step, fallback)

    async def _provision(self) -> None:
        self.downloads = "running"
        ok = await provision_models(self.steps, self.settings, without="ComfyUI runs without them")
        self.downloads = "done" if ok else "failed"

    async def _provision_nodes(self) -> None:
        """Node packs; when they land after ComfyUI's first start, one soft restart loads them."""
        self.nodes = "running"
        report = await provision_packs(self.steps, self.settings)
        if report is None:
            self.nodes = "failed"
            return
        self.node_packs = [
            {k: pack.to_json()[k] for k in ("name", "folder", "version", "commit", "status")}
            for pack in report.packs
        ]
        self.nodes = "done" if all(pack.in_place for pack in report.packs) else "failed"
        landed = [pack.folder or pack.name for pack in report.packs if pack.status == "ok"]
        if landed and self._comfyui_launched and self.state != "stopping":
            log.info("nodes: %s landed after ComfyUI started: one soft restart", ", ".join(landed))
            await self.supervisor.restart(comfyui.NAME)

    async def _monitor(self) -> None:
        try:
            await self.steps.monitor_connections(self.settings)
        except (OSError, IgnitionError) as error:
            log.error("privacy: connection monitor stopped: %s", error)


def run_until_stopped(settings: Settings, steps: Steps) -> NoReturn:
    """The entrypoint: run the pod, then leave the moment the hard stop is done.

    Not `asyncio.run`: on the way out it waits for executor threads, and a stop can leave one
    busy (a download's hash of a 20 GB file, whose coroutine was cancelled) far beyond RunPod's
    ~10 s stop grace. Every child is already stopped by then, and the log is flushed here.
    """
    code = asyncio.new_event_loop().run_until_complete(run_pod(settings, steps))
    logging.shutdown()
    sys.stdout.flush()
    os._exit(code)


async def run_pod(settings: Settings, steps: Steps) -> int:
    """The entrypoint's whole life; returns the process exit code."""
    pod = Pod(settings, steps, configure_startup_logging(settings))
    try:
        server = await control.serve(settings.control_socket, pod.handle)
    except (OSError, RuntimeError) as error:
        log.error("cannot open the control socket %s: %s", settings.control_socket, error)
        return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, pod, sig)

    bring_up = asyncio.create_task(pod.bring_up())
    bring_up.add_done_callback(_report_failed_start)
    try:
        await pod.stop_requested.wait()
        # A stop during start-up (RunPod stopping a pod that is still downloading) skips the rest.
        bring_up.cancel()
        await asyncio.gather(bring_up, return_exceptions=True)
        await pod.hard_stop()
    finally:
        await server.close()  # control.sock goes, whatever the stop ran into
    return 0


_RULE = "=" * 72
_SETTLED_POLL_S = 0.2
# The torch/CUDA check's lines belong above the block, but a broken COMFYUI_PYTHON must not
# hold the block back for long.
_TORCH_CHECK_WAIT_S = 20.0


async def _settled(
    supervisor: Supervisor, torch_check: asyncio.Task[Any], waiting_ok: Callable[[], bool]
) -> None:
    """Until every service is ready, off or failed (or, while `waiting_ok()`, still waiting to be
    launched), and the torch check has had its say."""
    await asyncio.wait({torch_check}, timeout=_TORCH_CHECK_WAIT_S)
    while True:
        settled = ("off", "failed", "waiting") if waiting_ok() else ("off", "failed")
        if all(s.ready or s.state in settled for s in supervisor.services.values()):
            return
        await asyncio.sleep(_SETTLED_POLL_S)


def _announce(lines: Sequence[str]) -> None:
    for line in lines:
        log.info("%s", line, extra=ANNOUNCEMENT)


def _report_failed_start(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("start-up failed; the pod stays up for inspection: %s", error, exc_info=error)


def _on_signal(pod: Pod, sig: signal.Signals) -> None:
    log.info("received %s: hard stop", sig.name)
    pod.stop_requested.set()
