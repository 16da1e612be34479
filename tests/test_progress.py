"""Progress: periodic lines without a terminal, bars with one, the status file throughout."""

import asyncio
import io
import json
from pathlib import Path

from fakes.services import Fakes
from helpers import FAST_RETRY, PLENTY_OF_DISK, serve_catalog
from ignition.pipeline import provision
from ignition.progress import RunDisplay, format_bytes
from ignition.report import ModelOutcome, ProvisionReport


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_without_a_terminal_a_file_gets_a_line_every_few_seconds(tmp_path: Path) -> None:
    stream, clock = io.StringIO(), FakeClock()
    display = RunDisplay(
        tmp_path / "status.json", stream=stream, tty=False, line_interval_s=5, clock=clock
    )
    outcome = ModelOutcome("clip_l", "huggingface", "text_encoders", "clip_l.safetensors")
    display.attach(ProvisionReport([outcome]))
    with display:
        progress = display.transfer(outcome)
        progress.set_total(1000)
        for _ in range(10):  # ten chunks over 10 s → two lines, not ten
            clock.now += 1
            progress.advance(100)
        outcome.status = "ok"
        display.finished(outcome)
    lines = stream.getvalue().splitlines()
    assert lines == [
        "fetching text_encoders/clip_l.safetensors: 500 B of 1.0 KB (50%), 100 B/s",
        "fetching text_encoders/clip_l.safetensors: 1.0 KB of 1.0 KB (100%), 100 B/s",
        "ok      text_encoders/clip_l.safetensors (1.0 KB)",
    ]
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["phase"] == "done"
    assert status["models"][0]["bytes_done"] == 1000


def test_on_a_terminal_bars_are_drawn(fakes: Fakes) -> None:
    serve_catalog(fakes, "clip_l", "ae")
    stream = io.StringIO()
    display = RunDisplay(fakes.tmp_path / "s.json", stream=stream, tty=True)
    settings = fakes.settings(huggingface_models="clip_l,ae")
    report = asyncio.run(
        provision(settings, display=display, retry=FAST_RETRY, free_bytes=PLENTY_OF_DISK)
    )
    assert report.ok
    assert "clip_l.safetensors" in stream.getvalue()


def test_an_unwritable_status_file_does_not_stop_the_run(fakes: Fakes) -> None:
    serve_catalog(fakes, "clip_l")
    blocker = fakes.tmp_path / "not-a-dir"
    blocker.write_text("")
    stream = io.StringIO()
    display = RunDisplay(blocker / "status.json", stream=stream, tty=False)
    settings = fakes.settings(huggingface_models="clip_l")
    report = asyncio.run(
        provision(settings, display=display, retry=FAST_RETRY, free_bytes=PLENTY_OF_DISK)
    )
    assert report.ok
    assert stream.getvalue().count("cannot write the status file") == 1


def test_sizes_are_human() -> None:
    assert [format_bytes(n) for n in (None, 5, 1500, 2_500_000, 23_800_000_000)] == [
        "?",
        "5 B",
        "1.5 KB",
        "2.5 MB",
        "23.8 GB",
    ]
