"""The serverless worker running the REAL ComfyUI, when COMFYUI_DIR points at a checkout:
RunPod Hub's model-free test job (.runpod/tests.json) end to end, sent twice.

    COMFYUI_DIR=/path/to/ComfyUI COMFYUI_PYTHON=/path/to/venv/bin/python \
        python -m pytest tests/test_serverless_real_comfyui.py

CPU only (`--cpu`, override with COMFY_FLAGS). Skipped when COMFYUI_DIR is not set.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import pytest

from pod_harness import REPO, make_pod
from serverless_harness import Worker
from support import free_port

# Read at import: the autouse fixture clears every Ignition variable before a test runs.
_CHECKOUT = os.environ.get("COMFYUI_DIR")
_PYTHON = os.environ.get("COMFYUI_PYTHON", sys.executable)
_FLAGS = os.environ.get("COMFY_FLAGS", "--cpu")
pytestmark = pytest.mark.skipif(
    not _CHECKOUT or not (Path(_CHECKOUT) / "main.py").is_file(),
    reason="set COMFYUI_DIR to a ComfyUI checkout (and COMFYUI_PYTHON to its interpreter)",
)


@pytest.mark.timeout(600)
def test_real_comfyui_runs_the_hub_test_job_twice(tmp_path: Path) -> None:
    assert _CHECKOUT is not None
    pod = make_pod(
        tmp_path,
        comfyui_dir=Path(_CHECKOUT),
        COMFYUI_PYTHON=_PYTHON,
        COMFY_FLAGS=_FLAGS,
        IGNITION_SERVERLESS_VOLUME=str(tmp_path / "no-volume"),
    )
    worker = Worker(pod, free_port()).start()
    try:
        case = json.loads((REPO / ".runpod" / "tests.json").read_text())["tests"][0]
        for _ in range(2):  # the second run is served from ComfyUI's cache but for SaveImage
            answer = worker.runsync(case["input"], timeout_s=300)
            assert answer["status"] == "COMPLETED", answer
            [image] = answer["output"]["images"]
            assert base64.b64decode(image["data"]).startswith(b"\x89PNG")
    finally:
        worker.stop()
