"""One running child process: started in its own process group, output relayed, stopped as a group.

A child is a process-group leader (`start_new_session`), so stopping it signals the whole group:
ComfyUI's own helpers (pip, git, a custom node's worker) go down with it and nothing is orphaned.
Its stdout and stderr are merged and relayed line by line to the log, and the last lines are kept
so a crash can be reported with what the child said before dying.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections import deque
from collections.abc import Mapping

from ignition.run.service import ServiceSpec
from ignition.run.startup_log import FILE_ONLY

# By `spec.console`: a quiet child's lines are marked for the log file only.
FILE_ONLY_IF = {True: {}, False: FILE_ONLY}

log = logging.getLogger("ignition.run")

_TAIL_LINES = 40
# A line longer than this is relayed in pieces rather than blocking the reader (progress bars).
_READ_LIMIT_BYTES = 1 << 20


class Child:
    """A started ServiceSpec. `exit_code` is None while it runs."""

    def __init__(self, spec: ServiceSpec, process: asyncio.subprocess.Process) -> None:
        self.spec = spec
        self.pid = process.pid
        self.started_at = time.time()
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self._process = process
        self._relay = asyncio.create_task(self._relay_output(), name=f"relay-{spec.name}")

    @classmethod
    async def start(cls, spec: ServiceSpec, base_env: Mapping[str, str]) -> Child:
        env = {**spec.inherited, **base_env, **spec.env}
        process = await asyncio.create_subprocess_exec(
            *spec.argv,
            cwd=spec.cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            limit=_READ_LIMIT_BYTES,
        )
        return cls(spec, process)

    @property
    def exit_code(self) -> int | None:
        return self._process.returncode

    async def wait(self) -> int:
        """Wait for exit and for the last output line to be relayed."""
        code = await self._process.wait()
        with contextlib.suppress(asyncio.CancelledError):
            await self._relay
        # The leader is gone; anything it left behind in its group goes too.
        self._signal_group(signal.SIGKILL)
        return code

    async def stop(self, grace_s: float) -> int:
        """SIGTERM to the group, SIGKILL after `grace_s`; returns the exit code."""
        if self.exit_code is None:
            self._signal_group(signal.SIGTERM)
            try:
                return await asyncio.wait_for(asyncio.shield(self.wait()), grace_s)
            except TimeoutError:
                log.warning("%s ignored SIGTERM for %g s; killing it", self.spec.name, grace_s)
                self._signal_group(signal.SIGKILL)
        return await self.wait()

    def _signal_group(self, sig: signal.Signals) -> None:
        # The group id is the leader's pid; it stays reserved while any member lives.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)

    async def _relay_output(self) -> None:
        stream = self._process.stdout
        assert stream is not None
        child_log = logging.getLogger(f"ignition.child.{self.spec.name}")
        while True:
            try:
                raw = await stream.readline()
            except ValueError:  # a line beyond the limit: take what is buffered
                raw = await stream.read(_READ_LIMIT_BYTES)
            if not raw:
                return
            line = raw.decode("utf-8", errors="replace").rstrip()
            self.tail.append(line)
            child_log.info("[%s] %s", self.spec.name, line, extra=FILE_ONLY_IF[self.spec.console])
