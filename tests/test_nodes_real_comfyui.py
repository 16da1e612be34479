"""A node pack from the (fake) Comfy Registry, loaded by the REAL ComfyUI through `ignition start`,
when COMFYUI_DIR points at a checkout (and COMFYUI_PYTHON at its interpreter):

    COMFYUI_DIR=/path/to/ComfyUI COMFYUI_PYTHON=/path/to/venv/bin/python \\
        .venv/bin/python -m pytest tests/test_nodes_real_comfyui.py

CPU only (`--cpu`). Skipped when COMFYUI_DIR is not set; CI has no ComfyUI checkout.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from fakes.registry import FakeRegistry, node_pack_files
from pod_harness import make_pod

# Read at import: the autouse fixture clears every Ignition variable before a test runs.
_CHECKOUT = os.environ.get("COMFYUI_DIR")
_PYTHON = os.environ.get("COMFYUI_PYTHON", sys.executable)

pytestmark = pytest.mark.skipif(
    _CHECKOUT is None,
    reason="set COMFYUI_DIR to a ComfyUI checkout (and COMFYUI_PYTHON to its interpreter)",
)


@pytest.mark.timeout(600)
def test_real_comfyui_loads_a_registry_pack_installed_before_its_start(
    tmp_path: Path, registry: FakeRegistry
) -> None:
    assert _CHECKOUT is not None
    registry.publish("real-pack", "1.0.0", node_pack_files("IgnitionRealNode"))
    pod = make_pod(
        tmp_path,
        comfyui_dir=Path(_CHECKOUT),
        COMFYUI_PYTHON=_PYTHON,
        COMFY_FLAGS="--cpu",
        COMFYUI_NODES="real-pack@1.0.0",
        COMFY_REGISTRY_ENDPOINT=registry.url,
        NUKE_ON_STOP="false",
    )
    pod.start()
    try:
        pod.wait_ready(timeout_s=300)
        assert "IgnitionRealNode" in pod.get("/object_info/IgnitionRealNode")
        pack = pod.workspace / "ComfyUI" / "custom_nodes" / "real-pack"
        assert (pack / ".tracking").is_file()  # laid out as ComfyUI-Manager does
        assert pod.cli("stop").returncode == 0
        pod.wait_exit()
    finally:
        pod.kill()
