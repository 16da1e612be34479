"""How long nuke takes on a tree of many small files, and what one monitor sample costs.

python benchmarks/privacy_and_nuke.py [FILES]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from ignition.nuke import nuke
from ignition.privacy.monitor import sample
from ignition.settings import load_settings


def main() -> None:
    files = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        output = base / "ws/ComfyUI/output"
        for index in range(files):
            folder = output / f"batch{index // 100:04d}"
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"image{index:06d}.png").write_bytes(b"p" * 1024)
        settings = load_settings(
            workspace=base / "ws", home=base / "home", tmp_dir=base / "tmp", persistent_storage=""
        )
        started = time.perf_counter()
        report = nuke(settings)
        elapsed = time.perf_counter() - started
        print(
            f"nuke: {report.files} files, {report.folders} folders in {elapsed:.2f} s "
            f"({report.files / elapsed:,.0f} files/s)"
        )

    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        sample(include_private=True)
    per_sample_ms = (time.perf_counter() - started) / rounds * 1000
    print(f"monitor: one sample of all sockets takes {per_sample_ms:.1f} ms")


if __name__ == "__main__":
    main()
