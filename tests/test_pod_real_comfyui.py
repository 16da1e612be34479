"""The real supervisor running the REAL ComfyUI, when COMFYUI_DIR points at a checkout.

    COMFYUI_DIR=/path/to/ComfyUI COMFYUI_PYTHON=/path/to/venv/bin/python \
        python -m pytest tests/test_pod_real_comfyui.py

CPU only (`--cpu`, override with COMFY_FLAGS). Skipped when COMFYUI_DIR is not set.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pod_harness import Pod, make_pod
from support import wait_for

# Read at import: the autouse fixture clears every Ignition variable before a test runs.
_CHECKOUT = os.environ.get("COMFYUI_DIR")
_PYTHON = os.environ.get("COMFYUI_PYTHON", sys.executable)
_FLAGS = os.environ.get("COMFY_FLAGS", "--cpu")
pytestmark = pytest.mark.skipif(
    not _CHECKOUT or not (Path(_CHECKOUT) / "main.py").is_file(),
    reason="set COMFYUI_DIR to a ComfyUI checkout (and COMFYUI_PYTHON to its interpreter)",
)


@pytest.fixture
def pod(tmp_path: Path) -> Iterator[Pod]:
    assert _CHECKOUT is not None
    started = make_pod(
        tmp_path,
        comfyui_dir=Path(_CHECKOUT),
        COMFYUI_PYTHON=_PYTHON,
        COMFY_FLAGS=_FLAGS,
    )
    yield started
    started.kill()


def _checkpoints(pod: Pod) -> list[str]:
    info = pod.get("/object_info/CheckpointLoaderSimple")
    choices: list[str] = info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    return choices


@pytest.mark.timeout(600)
def test_real_comfyui_start_restart_crash_stop(pod: Pod) -> None:
    pod.start()
    first = pod.wait_ready(timeout_s=300)

    # A model placed while ComfyUI runs shows up without a restart.
    checkpoints = pod.workspace / "ComfyUI" / "models" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    (checkpoints / "tiny-test.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    wait_for(lambda: "tiny-test.safetensors" in _checkpoints(pod), 30, "the model listed")

    # Soft restart: a new process, the model still there.
    assert pod.cli("restart").returncode == 0
    second = pod.wait_ready(not_pid=first["pid"], timeout_s=300)
    assert "tiny-test.safetensors" in _checkpoints(pod)

    # kill -9: back within seconds.
    os.kill(second["pid"], signal.SIGKILL)
    began = time.monotonic()
    third = pod.wait_ready(not_pid=second["pid"], timeout_s=300)
    back_s = time.monotonic() - began
    assert third["crashes"] == 1 and third["last_exit_code"] == -9
    print(f"back after kill -9 in {back_s:.1f} s")

    assert pod.cli("stop").returncode == 0
    assert pod.wait_exit() == 0
    assert "hard stop: running the nuke" in pod.startup_log
    assert not (checkpoints / "tiny-test.safetensors").exists()
    for pid in (first["pid"], second["pid"], third["pid"]):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
