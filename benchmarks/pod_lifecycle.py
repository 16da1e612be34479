"""Times the pod's life with the real supervisor and the ComfyUI stand-in (or a real ComfyUI).

    python benchmarks/pod_lifecycle.py                      # stand-in
    COMFYUI_DIR=/path/ComfyUI COMFYUI_PYTHON=/venv/bin/python COMFY_FLAGS=--cpu \
        python benchmarks/pod_lifecycle.py                  # real ComfyUI

Prints seconds from `ignition start` until ComfyUI answers HTTP, from `ignition restart` until the
new process answers, from SIGTERM to the supervisor's exit, and the same while a download hangs.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from pod_harness import STANDIN_DIR, make_pod, wait_for


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
    print(f"SIGTERM mid-download: {_stop_during_download(comfyui_dir, extra):6.2f} s")


def _stop_during_download(comfyui_dir: Path, extra: dict[str, str]) -> float:
    """SIGTERM while WAIT_FOR_MODELS holds ComfyUI back for a download that hangs."""
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)  # accepts, never answers
        pod = make_pod(
            Path(tmp),
            comfyui_dir=comfyui_dir,
            WAIT_FOR_MODELS="true",
            HF_ENDPOINT=f"http://127.0.0.1:{hung.getsockname()[1]}",
            HUGGINGFACE_MODELS="org/slow/model.safetensors",
            **extra,
        )
        try:
            pod.start()
            wait_for(lambda: pod.status().get("downloads", {}).get("state") == "running", 60, "dl")
            began = time.monotonic()
            pod.signal(signal.SIGTERM)
            pod.wait_exit(timeout_s=60)
            return time.monotonic() - began
        finally:
            pod.kill()


if __name__ == "__main__":
    main()
