"""A job cancelled while its prompt runs (RunPod's cancel: runpod-python cancels the handler's
task) interrupts the prompt in ComfyUI, and the job's files are still removed. Runs the handler
in the test's own loop against the executing stand-in, started as a plain process."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ignition._http import HttpClient
from ignition.serverless.comfy_api import ComfyApi
from ignition.serverless.execution import Progress
from ignition.serverless.handler import JobContext, handle
from ignition.serverless.model_cache import ModelCache
from ignition.settings import Settings
from serverless_harness import CHECKPOINT, EXEC_STANDIN_DIR, text_to_image
from support import free_port, http_status, wait_for


class _Up:
    async def wait_up(self) -> None:
        return None

    async def crash_report(self) -> str:
        return "(not supervised in this test)"


@pytest.fixture
def comfyui(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    base = tmp_path / "ComfyUI"
    (base / "models" / "checkpoints").mkdir(parents=True)
    (base / "models" / "checkpoints" / CHECKPOINT).write_bytes(b"weights")
    port = free_port()
    argv = [sys.executable, "main.py", "--base-directory", str(base), "--port", str(port)]
    process = subprocess.Popen(
        argv, cwd=EXEC_STANDIN_DIR, env={"STANDIN_STEP_S": "0.05", "PATH": ""}
    )
    try:
        wait_for(lambda: _answers(port), 20, "the stand-in")
        yield port, base
    finally:
        process.kill()
        process.wait()


def _answers(port: int) -> bool:
    try:
        return http_status(f"http://127.0.0.1:{port}/system_stats") == 200
    except OSError:
        return False


async def test_a_cancelled_job_interrupts_its_prompt(
    comfyui: tuple[int, Path], tmp_path: Path
) -> None:
    port, base = comfyui
    settings = Settings(workspace=base.parent, run_dir=tmp_path / "run")
    steps: list[Progress] = []

    def progress(_job: dict[str, Any], update: Progress) -> None:
        steps.append(update)

    async with HttpClient() as client:
        context = JobContext(
            settings=settings,
            api=ComfyApi(client, f"http://127.0.0.1:{port}"),
            client=client,
            comfyui=_Up(),
            models=ModelCache(settings),
            progress=progress,
        )
        job = {"id": "cancel-me", "input": {"workflow": text_to_image("long", steps=400)}}
        running = asyncio.create_task(handle(context, job))
        while not any("value" in update for update in steps):
            await asyncio.sleep(0.02)

        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

        # Interrupted, not left to sample 400 steps: the next job is done at once.
        quick = {"id": "next", "input": {"workflow": text_to_image("quick", steps=1)}}
        result = await asyncio.wait_for(handle(context, quick), 10)
    assert result["images"][0]["filename"] == "ComfyUI_00001_.png"
    assert max(u.get("value", 0) for u in steps if u["class_type"] == "KSampler") < 400
    assert not (base / "output" / "ignition-jobs" / "cancel-me").exists()
