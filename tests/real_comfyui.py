"""What the tests that run the REAL ComfyUI share: where it is, and the skip when it isn't.

    COMFYUI_DIR=/path/to/ComfyUI COMFYUI_PYTHON=/path/to/venv/bin/python \\
        .venv/bin/python -m pytest tests -k real_comfyui

CPU only (`--cpu`, override with COMFY_FLAGS). CI has no checkout, so these are skipped there.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# Read at import: the autouse fixture clears every Ignition variable before a test runs.
_CHECKOUT = os.environ.get("COMFYUI_DIR")
PYTHON = os.environ.get("COMFYUI_PYTHON", sys.executable)
FLAGS = os.environ.get("COMFY_FLAGS", "--cpu")
CHECKOUT = Path(_CHECKOUT) if _CHECKOUT else Path("/nonexistent")

needs_real_comfyui = pytest.mark.skipif(
    not (CHECKOUT / "main.py").is_file(),
    reason="set COMFYUI_DIR to a ComfyUI checkout (and COMFYUI_PYTHON to its interpreter)",
)
