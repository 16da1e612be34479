"""Show a run as it proceeds: rich bars on a terminal, one line per file every few seconds in
container logs (no bar spam), and a JSON status file for `ignition status` and people tailing it.

Status file (`Settings.status_file`, by default /run/ignition/downloads.json):
`{"phase", "updated_at", "ok", "needed_bytes", "free_bytes", "models": [ModelOutcome…]}`,
replaced atomically at most once a second and at every file's end.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Literal, TextIO

from ignition.atomic import write_atomic
from ignition.report import ModelOutcome, ProvisionReport

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from ignition._http import RetryNotice


def format_bytes(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def _bars(stream: TextIO) -> Progress:
    # Imported here: container logs (no terminal) never draw bars, and rich costs 70 ms to import.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("{task.description}", justify="left"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(file=stream),
    )


# Where a run is, in the status file; "done" and "interrupted" are final.
Phase = Literal["starting", "resolving", "fetching", "done", "interrupted"]


class RunDisplay:
    """Progress for one provisioning run; `transfer(outcome)` hands a file its reporter."""

    def __init__(
        self,
        status_file: Path | None,
        *,
        stream: TextIO,
        tty: bool,
        line_interval_s: float = 5.0,
        status_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        list_finished: bool = True,
    ) -> None:
        """`list_finished=False`: no line per finished file, because a summary table listing
        each one follows in the same log (the CLI's stdout and stderr going to one place)."""
        self.report = ProvisionReport()
        self._list_finished = list_finished
        self._status_file = status_file
        self._stream = stream
        self._line_interval_s = line_interval_s
        self._status_interval_s = status_interval_s
        self._clock = clock
        self._phase: Phase = "starting"
        self._last_status = float("-inf")
        self._status_broken = False
        self._bars: Progress | None = None
        self._total_task: TaskID | None = None
        self._retry_said: dict[str, float] = {}  # host → when its last retry line was shown
        if tty:
            self._bars = _bars(stream)

    def attach(self, report: ProvisionReport) -> None:
        """Show and save `report` (the pipeline creates it; the display is made before)."""
        self.report = report

    def __enter__(self) -> RunDisplay:
        if self._bars is not None:
            self._bars.start()
        self.write_status(force=True)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bars is not None:
            self._bars.stop()
        self._phase = "done" if exc is None else "interrupted"
        self.write_status(force=True)

    def set_phase(self, phase: Phase) -> None:
        self._phase = phase
        if phase == "fetching":
            pending = [o for o in self.report.outcomes if o.status == "pending"]
            total = sum(o.size or 0 for o in pending)
            if self._bars is not None:
                self._total_task = self._bars.add_task("total", total=total or None)
            elif pending:
                # Without bars, this line is all a container log shows until the first file ends.
                self.say(f"fetching {len(pending)} file(s), {format_bytes(total)}")
        self.write_status(force=True)

    def say(self, message: str) -> None:
        if self._bars is not None:
            self._bars.console.print(message, markup=False, highlight=False)
        else:
            print(message, file=self._stream, flush=True)

    def retrying(self, notice: RetryNotice) -> None:
        """One line when a request fails and will be tried again (RetryPolicy.on_retry): a run
        with no network says so at once instead of waiting out its backoff in silence. Requests
        to the same host fail together; they share a line every `line_interval_s`."""
        now = self._clock()
        if now - self._retry_said.get(notice.host, float("-inf")) < self._line_interval_s:
            return
        self._retry_said[notice.host] = now
        self.say(
            f"{notice.reason} — retrying {notice.what} in {notice.delay_s:.0f} s, "
            f"for up to {notice.keeps_trying_s:.0f} s more"
        )

    def transfer(self, outcome: ModelOutcome) -> FileProgress:
        return FileProgress(self, outcome)

    def finished(self, outcome: ModelOutcome) -> None:
        if not self._list_finished:
            self.write_status(force=True)
            return
        where = f"{outcome.folder}/{outcome.filename}" if outcome.filename else outcome.name
        if outcome.status == "failed":
            self.say(f"FAILED {where}: {outcome.error}")
            if outcome.hint:
                self.say(f"       hint: {outcome.hint}")
        else:
            self.say(f"{outcome.status:<7} {where} ({format_bytes(outcome.size)})")
        self.write_status(force=True)

    def write_status(self, *, force: bool = False) -> None:
        now = self._clock()
        if self._status_file is None or self._status_broken:
            return
        if not force and now - self._last_status < self._status_interval_s:
            return
        self._last_status = now
        document = {"phase": self._phase, "updated_at": time.time(), **self.report.to_json()}
        if self._phase not in ("done", "interrupted"):
            document["ok"] = None
        try:
            self._status_file.parent.mkdir(parents=True, exist_ok=True)
            # Rewritten every second and rebuilt by the next run: not worth an fsync.
            write_atomic(self._status_file, json.dumps(document, indent=1), durable=False)
        except OSError as error:
            self._status_broken = True
            self.say(f"warning: cannot write the status file {self._status_file}: {error}")


class FileProgress:
    """TransferProgress for one file: bytes into its outcome, bars or periodic lines, status."""

    def __init__(self, display: RunDisplay, outcome: ModelOutcome) -> None:
        self._display = display
        self._outcome = outcome
        self._started = display._clock()
        self._last_line = self._started
        self._task: TaskID | None = None
        bars = display._bars
        if bars is not None:
            label = outcome.filename or outcome.name
            self._task = bars.add_task(label, total=outcome.size)

    def set_total(self, total_bytes: int | None) -> None:
        if total_bytes is not None:
            self._outcome.size = total_bytes
        if self._task is not None and self._display._bars is not None:
            self._display._bars.update(self._task, total=total_bytes)

    def advance(self, n_bytes: int) -> None:
        self._outcome.bytes_done += n_bytes
        display = self._display
        if display._bars is not None and self._task is not None:
            display._bars.update(self._task, advance=n_bytes)
            if display._total_task is not None:
                display._bars.update(display._total_task, advance=n_bytes)
        else:
            now = display._clock()
            if now - self._last_line >= display._line_interval_s:
                self._last_line = now
                display.say(self._line(now))
        display.write_status()

    def reset(self, done_bytes: int = 0) -> None:
        lost = self._outcome.bytes_done - done_bytes
        self._outcome.bytes_done = done_bytes
        display = self._display
        if display._bars is not None and self._task is not None:
            display._bars.update(self._task, completed=done_bytes)
            if display._total_task is not None and lost:
                display._bars.update(display._total_task, advance=-lost)

    def close(self) -> None:
        if self._display._bars is not None and self._task is not None:
            self._display._bars.remove_task(self._task)

    def _line(self, now: float) -> str:
        outcome = self._outcome
        done, total = outcome.bytes_done, outcome.size
        share = f" ({100 * done // total}%)" if total else ""
        speed = done / max(now - self._started, 1e-6)
        return (
            f"fetching {outcome.folder}/{outcome.filename}: {format_bytes(done)} of "
            f"{format_bytes(total)}{share}, {format_bytes(int(speed))}/s"
        )
