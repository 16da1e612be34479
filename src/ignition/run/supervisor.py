"""Keeps children up: start, readiness, crash → restart with backoff, soft restart, hard stop.

Each service runs in its own loop (`_keep_up`): build the spec (rebuilt at every start, so a
changed Manager toggle applies on a soft restart), start the child, poll its ready URL, then wait
for whichever comes first — the child exiting, a restart request, or the stop request.

A crash is restarted after `first_delay_s` (IGNITION_RESTART_DELAY_S, 2 s by default), doubling
while it keeps crashing up to `_MAX_DELAY_S` (a run that stayed up for `_STABLE_S` resets it).
A child that dies before ever answering its ready URL `_GIVE_UP_AFTER` times in a row is in a
crash loop (an unknown flag in COMFY_FLAGS makes ComfyUI exit 2 at once): it is reported with its
last output lines and left down until `ignition restart`.
An exit after ComfyUI-Manager touched `$__COMFY_CLI_SESSION__.reboot` is a requested restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ignition._http import NETWORK_ERRORS, HttpClient, RetryPolicy
from ignition.errors import IgnitionError
from ignition.run.child import Child
from ignition.run.service import ServiceSpec

log = logging.getLogger("ignition.run")

FIRST_DELAY_S = 2.0
_MAX_DELAY_S = 60.0
_STABLE_S = 300.0
_GIVE_UP_AFTER = 3
_READY_POLL_S = 0.25
_STOP_GRACE_S = 5.0
_CRASH_REPORT_LINES = 15


# waiting: not launched yet; starting: started, not answering its ready URL yet; running: ready;
# restarting: stopped for a restart, or waiting out a crash's backoff; stopping: the hard stop is
# stopping it; stopped: down for good (hard stop); failed: given up on (crash loop, cannot start)
# until `ignition restart`; off: switched off by its settings.
ServiceState = Literal[
    "waiting", "starting", "running", "restarting", "stopping", "stopped", "failed", "off"
]
# Why one run of a child ended.
_RunEnd = Literal["exit", "restart", "stop"]


@dataclass
class Service:
    """One supervised service and what `ignition status` reports about it."""

    name: str
    build: Callable[[], ServiceSpec | None]  # None: switched off by its settings
    # Set when a clean exit is a restart request (ComfyUI-Manager's reboot marker file).
    reboot_marker: Path | None = None
    state: ServiceState = "waiting"
    child: Child | None = None
    ran_ready: bool = False  # the current (or last) run answered its ready URL
    ever_ready: bool = False
    restarts: int = 0
    crashes: int = 0
    last_exit_code: int | None = None
    error: str | None = None
    public_url: str | None = None
    _restart: asyncio.Event = field(default_factory=asyncio.Event)
    _started: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def ready(self) -> bool:
        """Answering its ready URL now."""
        return self.state == "running"

    def snapshot(self) -> dict[str, Any]:
        alive = self.child is not None and self.child.exit_code is None
        return {
            "state": self.state,
            "alive": alive,
            "ready": self.ready,
            "pid": self.child.pid if alive and self.child else None,
            "uptime_s": round(time.time() - self.child.started_at, 1)
            if alive and self.child
            else None,
            "restarts": self.restarts,
            "crashes": self.crashes,
            "last_exit_code": self.last_exit_code,
            "error": self.error,
            "url": self.public_url,
        }


class Supervisor:
    def __init__(
        self,
        base_env: Mapping[str, str],
        *,
        redact: Callable[[str], str] = str,
        first_delay_s: float = FIRST_DELAY_S,
    ) -> None:
        self.services: dict[str, Service] = {}
        self.first_delay_s = first_delay_s
        self.stopping = asyncio.Event()
        self.base_env = dict(base_env)
        self._redact = redact
        self._loops: dict[str, asyncio.Task[None]] = {}

    def add(self, service: Service) -> None:
        self.services[service.name] = service

    def launch(self, name: str) -> None:
        """Start keeping `name` up (again, if it had given up)."""
        service = self.services[name]
        running = self._loops.get(name)
        if running is not None and not running.done():
            return
        service.error = None
        self._loops[name] = asyncio.create_task(self._keep_up(service), name=f"keep-up-{name}")

    async def restart(self, name: str) -> int | None:
        """Soft restart: stop the child, start it again at once. Returns the new pid."""
        service = self.services[name]
        service._started.clear()
        running = self._loops.get(name)
        if running is None or running.done():
            self.launch(name)
        else:
            service._restart.set()
        await service._started.wait()
        return service.child.pid if service.child else None

    async def stop_all(self) -> None:
        """Hard stop: every child gets SIGTERM, then SIGKILL after the grace."""
        self.stopping.set()
        loops = [task for task in self._loops.values() if not task.done()]
        if loops:
            await asyncio.gather(*loops, return_exceptions=True)

    async def _keep_up(self, service: Service) -> None:
        unready_crashes = 0
        delay_s = self.first_delay_s
        while not self.stopping.is_set():
            try:
                spec = service.build()
            except (IgnitionError, OSError) as error:  # a bad setting, an unwritable volume
                self._give_up(service, f"{service.name} cannot be started: {error}")
                return
            if spec is None:
                service.state = "off"
                service._started.set()
                return
            service.public_url = spec.public_url
            service.state = "starting"
            service.ran_ready = False
            try:
                child = await Child.start(spec, self.base_env)
            except OSError as error:
                self._give_up(service, f"{service.name} cannot be started: {error}")
                return
            service.child = child
            service._restart.clear()
            service._started.set()
            log.info("%s started (pid %d): %s", service.name, child.pid, " ".join(spec.argv))

            outcome = await self._run_once(service, child, spec)
            if outcome == "stop":
                service.state = "stopped"
                return
            if outcome == "restart":
                service.restarts += 1
                continue
            # The child exited on its own.
            code = service.last_exit_code
            if service.reboot_marker is not None and _consume(service.reboot_marker):
                log.info("%s asked for a restart (ComfyUI-Manager); restarting", service.name)
                service.restarts += 1
                continue
            service.crashes += 1
            lived_s = time.time() - child.started_at
            unready_crashes = 0 if service.ran_ready else unready_crashes + 1
            if lived_s >= _STABLE_S:
                delay_s = self.first_delay_s
            if unready_crashes >= _GIVE_UP_AFTER:
                self._give_up(service, _crash_loop_report(service, child, code, unready_crashes))
                return
            log.warning(
                "%s exited with code %s after %.1f s; restarting in %.0f s",
                service.name,
                code,
                lived_s,
                delay_s,
            )
            service.state = "restarting"
            if await self._sleep_unless_stopped(delay_s, service):
                service.state = "stopped"
                return
            delay_s = min(delay_s * 2, _MAX_DELAY_S)
            service.restarts += 1

    async def _run_once(self, service: Service, child: Child, spec: ServiceSpec) -> _RunEnd:
        """Wait for exit, restart or stop; returns which ("exit", "restart", "stop")."""
        readiness = asyncio.create_task(self._mark_ready(service, child, spec))
        exited = asyncio.create_task(child.wait())
        restart = asyncio.create_task(service._restart.wait())
        stop = asyncio.create_task(self.stopping.wait())
        try:
            await asyncio.wait({exited, restart, stop}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (readiness, restart, stop):
                task.cancel()
        if exited.done():
            service.last_exit_code = exited.result()
            if self.stopping.is_set():
                return "stop"
            return "exit"
        exited.cancel()
        service.state = "stopping" if self.stopping.is_set() else "restarting"
        service.last_exit_code = await child.stop(_STOP_GRACE_S)
        log.info("%s stopped (exit code %s)", service.name, service.last_exit_code)
        return "stop" if self.stopping.is_set() else "restart"

    async def _mark_ready(self, service: Service, child: Child, spec: ServiceSpec) -> None:
        if spec.ready_url is not None:
            await _wait_until_answering(spec.ready_url)
        if child.exit_code is not None:
            return
        service.ran_ready = service.ever_ready = True
        service.state = "running"
        took_s = time.time() - child.started_at
        where = f" at {spec.public_url}" if spec.public_url else ""
        log.info("%s is ready%s (%.1f s after start)", service.name, where, took_s)

    async def _sleep_unless_stopped(self, delay_s: float, service: Service) -> bool:
        """Sleep through the backoff; a restart request cuts it short. True if stopping."""
        waiters = {
            asyncio.create_task(self.stopping.wait()),
            asyncio.create_task(service._restart.wait()),
        }
        _, pending = await asyncio.wait(
            waiters, timeout=delay_s, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        return self.stopping.is_set()

    def _give_up(self, service: Service, report: str) -> None:
        service.state = "failed"
        service.error = self._redact(report)
        service._started.set()
        log.error("%s", report)


# The readiness poll as a retry policy: refusals, timeouts and 5xx are asked again every
# _READY_POLL_S for as long as the child starts (the caller cancels the wait when it exits).
_READY_POLL = RetryPolicy(
    attempts=sys.maxsize,
    first_delay_s=_READY_POLL_S,
    max_delay_s=_READY_POLL_S,
    statuses=frozenset(range(500, 600)),
)


async def _wait_until_answering(url: str) -> None:
    """Poll until the URL answers below 500 (401 counts: the front door is up; a redirect to
    its login page too)."""
    async with HttpClient(
        connections=1, connect_timeout_s=2, read_timeout_s=2, retry=_READY_POLL
    ) as client:
        while True:
            # An answer that is not HTTP at all (another program on the port) starts over.
            with contextlib.suppress(*NETWORK_ERRORS):
                async with client.get(url, follow_redirects=False):
                    return
            await asyncio.sleep(_READY_POLL_S)


def _consume(marker: Path) -> bool:
    try:
        marker.unlink()
    except FileNotFoundError:
        return False
    return True


def _crash_loop_report(service: Service, child: Child, code: int | None, times: int) -> str:
    last = list(child.tail)[-_CRASH_REPORT_LINES:]
    said = "\n".join(f"    {line}" for line in last) if last else "    (no output)"
    hint = (
        "exit code 2 usually means a command-line flag was rejected: check COMFY_FLAGS"
        if code == 2
        else "read the output above, fix the cause"
    )
    return (
        f"{service.name} keeps exiting before it becomes ready ({times} times in a row, last "
        f"exit code {code}); not restarting it again.\n"
        f"  Its last output:\n{said}\n"
        f"  What to do: {hint}, then run `ignition restart`."
    )
