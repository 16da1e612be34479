"""`ignition start` with IGNITION_MANIFEST: the real supervisor provisions from the manifest and,
with ignition.lock beside it, exactly the locked files."""

from __future__ import annotations

import signal
from pathlib import Path

from fakes.content import model_bytes
from fakes.services import Fakes
from pod_harness import Pod, make_pod
from test_download_cli import ignition


def test_a_pod_started_with_a_locked_manifest_gets_exactly_the_locked_files(
    pods: list[Pod], tmp_path: Path, fakes: Fakes
) -> None:
    fakes.hf.add("org/good", {"good.safetensors": model_bytes("good")})
    fakes.hf.add("org/moved", {"moved.safetensors": model_bytes("moved")})
    manifest = tmp_path / "ignition.yaml"
    manifest.write_text(
        "version: 1\nmodels:\n  huggingface:\n"
        "    - org/good/good.safetensors:checkpoints\n"
        "    - org/moved/moved.safetensors:checkpoints\n"
    )
    assert ignition(fakes, "lock", str(manifest)).returncode == 0
    fakes.hf.repos["org/moved"].files["moved.safetensors"] = model_bytes("moved, later")

    pod = make_pod(
        tmp_path / "pod",
        WAIT_FOR_MODELS="true",
        HF_ENDPOINT=fakes.hf.url,
        IGNITION_MANIFEST=str(manifest),
    )
    pods.append(pod)
    pod.start()
    pod.wait_ready()

    assert pod.get("/models/checkpoints") == ["good.safetensors"]
    log = pod.startup_log
    assert "pinned by" in log
    assert "checkpoints/moved.safetensors changed since locked" in log
    pod.signal(signal.SIGTERM)
    assert pod.wait_exit() == 0
