"""Throughput and peak memory of `ignition download` (single-connection transfer) on loopback.

Serves one generated safetensors file from the test fakes (CivitAI → 307 → 127.0.0.2 storage),
runs `ignition download` as a child process and prints seconds, MB/s and the child's peak RSS.

    python benchmarks/download_simple.py [SIZE_MB]
"""

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fakes.civitai import CivitaiFile, FakeCivitai  # noqa: E402
from fakes.content import model_bytes  # noqa: E402
from fakes.storage import FakeStorage  # noqa: E402

# Runs `ignition download` and reports the peak RSS of that process alone. VmHWM belongs to the
# process image, so unlike getrusage's ru_maxrss it does not inherit this big parent's memory.
_CHILD = """
import re, sys
from pathlib import Path
from ignition.cli import main
code = main(sys.argv[1:])
status = Path("/proc/self/status").read_text()
print(re.search(r"VmHWM:\\s+(\\d+)", status).group(1), file=sys.stderr)
sys.exit(code)
"""


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    data = model_bytes("bench", size_mb * 1024 * 1024)
    storage = FakeStorage()
    civitai = FakeCivitai(storage)
    civitai.add(1, files=[CivitaiFile(10, "bench.safetensors", data)])
    storage.server.start()
    civitai.server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            env = {
                **os.environ,
                "PYTHONPATH": str(ROOT / "src"),
                "CIVITAI_ENDPOINT": civitai.url,
                "CIVITAI_MODELS": "1",
                "IGNITION_RUN_DIR": f"{tmp}/run",
            }
            command = [sys.executable, "-c", _CHILD, "download", "--models-dir", tmp]
            started = time.perf_counter()
            child = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
            seconds = time.perf_counter() - started
            peak_rss_mb = int(child.stderr.strip().splitlines()[-1]) / 1024
    finally:
        civitai.server.stop()
        storage.server.stop()
    print(f"file: {len(data) / 1e6:.1f} MB")
    print(f"wall time (incl. ~0.5 s start-up): {seconds:.2f} s")
    print(f"throughput: {len(data) / 1e6 / seconds:.1f} MB/s")
    print(f"peak RSS of ignition download: {peak_rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
