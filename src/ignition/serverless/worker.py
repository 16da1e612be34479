"""`ignition serverless`: a RunPod Serverless worker from the pod's image.

0. Logging as on a pod (stdout and IGNITION_STARTUP_LOG, secrets masked). The network volume
   (/runpod-volume, IGNITION_SERVERLESS_VOLUME) is the persistent store unless
   PERSISTENT_STORAGE says otherwise, with the store's cross-worker locks: fifty workers
   starting at once fetch each file once.
1. Privacy (hosts blocklist) and storage, advisory as on a pod. No front door, file browser or
   nuke: a worker is reachable only through RunPod's queue and is recycled by RunPod.
2. ComfyUI starts on 127.0.0.1, supervised (restart after a crash), while the start-up
   provisioning runs: the model lists and workflows a pod reads (custom nodes and the manifest
   join `provision_startup` when they land).
3. Once ComfyUI answers, the warm-up workflow (IGNITION_WARMUP_WORKFLOW) runs once, so the
   first job does not pay for loading the models.
4. runpod-python's `serverless.start` takes the jobs. Its own flags (`--rp_serve_api`,
   `--rp_api_port` …) pass through. A ComfyUI that cannot come up fails every job with its
   last lines instead of hanging.

Our asyncio loop (supervisor, ComfyUI client) runs in its own thread; runpod-python runs its
loop in the main thread and awaits each job on ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from ignition import __version__, bounded_json
from ignition._http import HttpClient
from ignition.errors import ComfyUIDownError, SpecError
from ignition.resolve.workflow_source import load_workflow
from ignition.run import comfyui, control
from ignition.run.child_env import basic_env
from ignition.run.manager_config import write_manager_config
from ignition.run.service import ServiceSpec
from ignition.run.startup_log import StartupLog, configure_startup_logging, known_secrets
from ignition.run.steps import (
    Steps,
    advisory,
    default_steps,
    provision_models,
    provision_packs,
)
from ignition.run.supervisor import Service, Supervisor
from ignition.serverless.comfy_api import ComfyApi
from ignition.serverless.execution import Progress
from ignition.serverless.handler import JobContext, handle
from ignition.serverless.model_cache import ModelCache
from ignition.serverless.uploads import S3Uploader
from ignition.settings import Settings

log = logging.getLogger("ignition.serverless")
_T = TypeVar("_T")

# How long a job waits for a (re)starting ComfyUI before it is failed.
COMFYUI_WAIT_S = 600.0
_POLL_S = 0.1
_REPORT_LINES = 15
_EXIT_WAIT_S = 2.0


def worker_settings(settings: Settings) -> Settings:
    """The network volume as the persistent store, unless PERSISTENT_STORAGE was set."""
    volume = settings.serverless_volume
    if "persistent_storage" in settings.model_fields_set or not volume.is_dir():
        return settings
    return settings.model_copy(update={"persistent_storage": str(volume)})


class SupervisedComfyUI:
    """ComfyUI as the supervisor keeps it, seen by jobs (handler.ComfyUIState)."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor

    @property
    def service(self) -> Service:
        return self.supervisor.services[comfyui.NAME]

    async def wait_up(self, timeout_s: float = COMFYUI_WAIT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.service.ready:
            if self.service.state == "failed":
                raise ComfyUIDownError(
                    f"ComfyUI could not be started on this worker: {self.service.error}"
                )
            if time.monotonic() > deadline:
                raise ComfyUIDownError(
                    f"ComfyUI did not answer within {timeout_s:.0f} s. {await self.crash_report()}"
                )
            await asyncio.sleep(_POLL_S)

    async def crash_report(self) -> str:
        service = self.service
        child = service.child
        # The socket closes as ComfyUI dies; its exit code and last lines follow a moment later.
        if child is not None:
            with contextlib.suppress(TimeoutError):
                # Shielded: the supervisor awaits the same exit, and relays the last lines.
                await asyncio.wait_for(asyncio.shield(child.wait()), _EXIT_WAIT_S)
        lines = list(child.tail)[-_REPORT_LINES:] if child is not None else []
        code = child.exit_code if child is not None else None
        state = f"exit code {code}" if code is not None else f"state {service.state}"
        said = "\n".join(f"    {line}" for line in lines) or "    (no output)"
        return f"ComfyUI ({state}; restarted by the worker) last said:\n{said}"


class Worker:
    def __init__(self, settings: Settings, steps: Steps, startup_log: StartupLog) -> None:
        self.settings = settings
        self.steps = steps
        self.startup_log = startup_log
        self.supervisor = Supervisor(
            basic_env(settings), redact=startup_log.mask, first_delay_s=settings.restart_delay_s
        )
        self.comfyui = SupervisedComfyUI(self.supervisor)
        self._extra_args: tuple[str, ...] = ()
        self._client: HttpClient | None = None
        self._resources = contextlib.AsyncExitStack()
        self.context: JobContext | None = None
        self.state = "starting"  # starting | taking jobs
        self.downloads = "pending"  # pending | done | failed
        self.jobs_done = 0
        self.started_at = time.time()

    async def bring_up(self) -> None:
        settings = self.settings
        log.info("ignition %s: starting a serverless worker", __version__)
        for warning in self.settings.unresolved_secret_warnings():
            log.warning("%s", warning)
        no_env: Mapping[str, str] = {}
        privacy_env = self._advisory("privacy", self.steps.prepare_privacy, no_env)
        self.supervisor.base_env.update(privacy_env)
        self._extra_args = tuple(self._advisory("storage", self.steps.prepare_storage, ()))
        if settings.persistent_store is not None:
            log.info("persistent store: %s", settings.persistent_store)
        self.startup_log.add_secrets(known_secrets(settings))
        # `ignition status` (the image's HEALTHCHECK) and `ignition restart` work as on a pod.
        try:
            server = await control.serve(settings.control_socket, self.handle)
            self._resources.push_async_callback(server.close)
        except (OSError, RuntimeError) as error:
            log.error("cannot open the control socket %s: %s", settings.control_socket, error)
        self._client = await self._resources.enter_async_context(HttpClient.from_settings(settings))
        port = settings.comfyui_port
        self.context = JobContext(
            settings=settings,
            api=ComfyApi(self._client, f"http://127.0.0.1:{port}"),
            client=self._client,
            comfyui=self.comfyui,
            models=ModelCache(settings),
            uploader=S3Uploader.configured(settings),
        )
        self.supervisor.add(Service(comfyui.NAME, self._comfyui_spec))
        provisioning = asyncio.create_task(self.provision_startup())
        # ComfyUI imports custom nodes only when it boots: the packs come first (a warm start
        # takes milliseconds); models keep downloading while it boots.
        await self.install_packs()
        self.supervisor.launch(comfyui.NAME)
        await provisioning
        try:
            await self.comfyui.wait_up()
        except ComfyUIDownError as error:
            log.error("%s; every job will be answered with this error", error)
            return
        await self.warm_up()

    async def install_packs(self) -> None:
        """Custom node packs (COMFYUI_NODES, workflows, the manifest), before ComfyUI's start;
        past IGNITION_NODES_WAIT_S ComfyUI starts without the rest, and jobs needing them fail."""
        try:
            await asyncio.wait_for(
                provision_packs(self.steps, self.settings), self.settings.nodes_wait_s
            )
        except TimeoutError:
            wait_s = self.settings.nodes_wait_s
            log.error("nodes: not in place after %g s; ComfyUI starts without them", wait_s)

    async def provision_startup(self) -> None:
        """The models a pod provisions at start (lists, workflows, the manifest)."""
        ok = await provision_models(
            self.steps, self.settings, without="jobs that need them will fail"
        )
        self.downloads = "done" if ok else "failed"

    async def warm_up(self) -> None:
        source = self.settings.warmup_workflow.strip()
        if not source or self.context is None or self._client is None:
            return
        started = time.monotonic()
        try:
            text = await load_workflow(self._client, source, self.settings)
            workflow = bounded_json.loads(text, what=f"warm-up workflow {source}")
        except (SpecError, bounded_json.UntrustedJsonError) as error:
            log.error("warm-up: IGNITION_WARMUP_WORKFLOW unusable: %s", error)
            return
        result = await handle(self.context, {"id": "warm-up", "input": {"workflow": workflow}})
        if "error" in result:
            log.error("warm-up failed: %s", result["error"])
        else:
            log.info("warm-up workflow done in %.1f s", time.monotonic() - started)

    async def run_job(
        self, job: dict[str, Any], progress: Callable[[dict[str, Any], Progress], None]
    ) -> dict[str, Any]:
        assert self.context is not None
        self.context.progress = progress
        self.state = "taking jobs"
        try:
            return await handle(self.context, job)
        finally:
            self.jobs_done += 1

    async def handle(self, message: dict[str, Any]) -> dict[str, Any]:
        """The control channel: status and restart; RunPod alone stops a worker."""
        command = message.get("command")
        if command == "ping":
            return {"ok": True}
        if command == "status":
            return {"ok": True, "status": self.status()}
        if command == "restart" and comfyui.NAME in self.supervisor.services:
            pid = await self.supervisor.restart(comfyui.NAME)
            return {"ok": pid is not None, "pid": pid, "manager_ui": False}
        return {"ok": False, "error": f"{command!r} is not available on a serverless worker"}

    def status(self) -> dict[str, Any]:
        return {
            "supervisor": {
                "pid": os.getpid(),
                "version": __version__,
                "state": self.state,
                "mode": "serverless worker",
                "jobs_done": self.jobs_done,
                "uptime_s": round(time.time() - self.started_at, 1),
            },
            "services": {n: s.snapshot() for n, s in self.supervisor.services.items()},
            "downloads": {"state": self.downloads},
            "ports": {"comfyui (127.0.0.1)": self.settings.comfyui_port},
            "manager_ui": False,
        }

    async def shut_down(self) -> None:
        await self.supervisor.stop_all()
        await self._resources.aclose()

    def _comfyui_spec(self) -> ServiceSpec:
        comfyui.prepare_base_directory(self.settings)
        write_manager_config(self.settings, ui_enabled=False)
        return comfyui.comfyui_service(
            self.settings,
            listen=comfyui.Listen("127.0.0.1", self.settings.comfyui_port),
            ui_enabled=False,
            extra_args=self._extra_args,
        )

    def _advisory(self, what: str, step: Callable[[Settings], _T], fallback: _T) -> _T:
        return advisory(self.settings, what, step, fallback)


def run_worker(settings: Settings, runpod_args: Sequence[str]) -> int:
    """Bring the worker up, hand it to runpod-python, stop ComfyUI when runpod-python returns."""
    startup_log = configure_startup_logging(settings)
    worker = Worker(worker_settings(settings), default_steps(), startup_log)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="ignition-worker", daemon=True).start()

    def on_loop(coroutine: Coroutine[Any, Any, _T]) -> asyncio.Future[_T]:
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop))

    asyncio.run_coroutine_threadsafe(worker.bring_up(), loop).result()
    import runpod  # only here: a pod never loads runpod-python

    def report(job: dict[str, Any], progress: Progress) -> None:
        runpod.serverless.progress_update(job, progress)

    async def handler(job: dict[str, Any]) -> dict[str, Any]:
        # Awaited on runpod-python's loop; cancelling it (RunPod's cancel) cancels ours.
        return await on_loop(worker.run_job(job, report))

    sys.argv = ["ignition", *runpod_args]
    try:
        runpod.serverless.start({"handler": handler})
    finally:
        asyncio.run_coroutine_threadsafe(worker.shut_down(), loop).result(timeout=30)
        logging.shutdown()
    return 0
