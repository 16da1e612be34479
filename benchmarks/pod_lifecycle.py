"""Times the pod's life with the real supervisor and the ComfyUI stand-in (or a real ComfyUI).

    python benchmarks/pod_lifecycle.py                      # stand-in
    COMFYUI_DIR=/path/ComfyUI COMFYUI_PYTHON=/venv/bin/python COMFY_FLAGS=--cpu \
        python benchmarks/pod_lifecycle.py                  # real ComfyUI

Prints seconds from `ignition start` until ComfyUI answers HTTP, from `ignition restart` until the
new process answers, and from SIGTERM to the supervisor's exit.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pod_harness import STANDIN_DIR, make_pod


def main() -> None:
    comfyui_dir = Path(os.environ.get("COMFYUI_DIR", STANDIN_DIR))
    extra = {k: os.environ[k] for k in ("COMFYUI_PYTHON", "COMFY_FLAGS") if k in os.environ}
    with tempfile.TemporaryDirectory() as tmp:
        pod = make_pod(Path(tmp), comfyui_dir=comfyui_dir, **extra)
        try:
            pod.start()
            pod.wait_http()
            ready_s = time.monotonic() - pod.started_at

            # `restart` answers once the old process is gone and the new one started: the next
            # answer on the port comes from the new process.
            began = time.monotonic()
            pod.cli("restart")
            pod.wait_http()
            restart_s = time.monotonic() - began

            began = time.monotonic()
            pod.signal(signal.SIGTERM)
            pod.wait_exit(timeout_s=60)
            stop_s = time.monotonic() - began
        finally:
            pod.kill()
    print(f"comfyui: {comfyui_dir}")
    print(f"start → ready:        {ready_s:6.2f} s")
    print(f"restart → ready:      {restart_s:6.2f} s")
    print(f"SIGTERM → exit:       {stop_s:6.2f} s")


if __name__ == "__main__":
    main()
