"""PERSISTENT_STORAGE: warm-start time, fetch-once under concurrency, and the local-disk fast path.

1. Warm start: 10 × 20 GB sparse files already in the store and recorded in its manifest;
   `ignition download` runs as a child against the loopback fakes. Prints its wall time and what
   it read (/proc/self/io of the child: `rchar` = bytes through read(2) and friends, page cache
   included; `read_bytes` = bytes fetched from the block device). Target: < 1 s, no model bytes.
2. Shared store: 2 and 4 concurrent `ignition download` children, one store, one loopback fake.
   Prints bytes served by the fake vs the sum of the file sizes, exit codes, wall time.
3. Fast path: is "download to the local disk, then move to the volume in the background" worth
   it when the volume's writes are capped (RunPod network volumes: ~150 MB/s aggregate)? The cap
   is simulated with a token bucket on the writer (kernel I/O throttling needs privileges this
   benchmark must not assume); the bytes come over HTTP from the loopback fake.

Medians over --runs repetitions.

    python benchmarks/bench_store.py [--runs 5] [--files 10] [--file-gb 20]
        [--volume-mb-s 50] [--fast-path-mb 128]
"""

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "src"))

from fakes.civitai import CivitaiFile, FakeCivitai  # noqa: E402
from fakes.content import model_bytes  # noqa: E402
from fakes.storage import FakeStorage  # noqa: E402
from ignition.place.manifest import Manifest  # noqa: E402

# The child runs the real CLI, then reports its own I/O counters (all threads included).
# It imports the command's modules first and times `main` alone, so start-up (interpreter +
# aiohttp/pydantic imports, paid once per pod by `ignition start`) shows apart from the work.
_CHILD = """
import sys, time
import ignition.cli.catalog, ignition.cli.download, ignition.pipeline
from ignition.cli import main
started = time.perf_counter()
code = main(sys.argv[1:])
work_s = time.perf_counter() - started
with open("/proc/self/io") as counters:
    io = dict(line.strip().split(": ") for line in counters)
print(f"IO {io['rchar']} {io['read_bytes']} {work_s}", file=sys.stderr)
raise SystemExit(code)
"""


class Fakes:
    def __init__(self) -> None:
        self.storage = FakeStorage()
        self.civitai = FakeCivitai(self.storage)

    def __enter__(self) -> "Fakes":
        self.storage.server.start()
        self.civitai.server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.civitai.server.stop()
        self.storage.server.stop()

    def reset_counters(self) -> None:
        self.storage.counters.bytes_served = 0
        self.storage.counters.requests.clear()


def _child(fakes: Fakes, store: Path, pod: Path, ids: str) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "CIVITAI_ENDPOINT": fakes.civitai.url,
        "PERSISTENT_STORAGE": str(store),
        "IGNITION_MODELS_DIR": str(pod / "models"),
        "IGNITION_RUN_DIR": str(pod / "run"),
        "WORKSPACE": str(pod / "workspace"),
    }
    command = [sys.executable, "-c", _CHILD, "download", "--civitai", ids]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def _io(stderr: str) -> tuple[int, int, float]:
    """The child's rchar, read_bytes and seconds spent in `main` after imports."""
    line = next(line for line in reversed(stderr.splitlines()) if line.startswith("IO "))
    rchar, read_bytes, work_s = line.split()[1:]
    return int(rchar), int(read_bytes), float(work_s)


def warm_start(fakes: Fakes, tmp: Path, runs: int, files: int, file_gb: int) -> None:
    store = tmp / "warm-store"
    manifest = Manifest(store)
    for n in range(1, files + 1):
        name = f"warm_{n}.safetensors"
        claimed = f"{n:064x}"  # never computed: hashing 20 GB would be the bug we measure
        fakes.civitai.add(n, files=[CivitaiFile(n, name, b"x", published_sha256=claimed)])
        path = store / "checkpoints" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as handle:
            handle.truncate(file_gb * 10**9)
        manifest.record(f"checkpoints/{name}", identity=f"sha256:{claimed}", sha256=claimed)
    ids = ",".join(str(n) for n in range(1, files + 1))
    seconds, works, rchars, reads = [], [], [], []
    for run in range(runs):
        fakes.reset_counters()
        started = time.perf_counter()
        child = _child(fakes, store, tmp / f"warm-pod{run}", ids)
        _, err = child.communicate()
        seconds.append(time.perf_counter() - started)
        assert child.returncode == 0, err
        rchar, read_bytes, work_s = _io(err)
        works.append(work_s)
        rchars.append(rchar)
        reads.append(read_bytes)
    print(f"warm start: {files} × {file_gb} GB sparse files in the store, recorded")
    print(
        f"  ignition download wall time, median: {statistics.median(seconds):.2f} s "
        f"(min {min(seconds):.2f}, max {max(seconds):.2f})"
    )
    print(
        f"  of which the command itself (after interpreter start and imports), median: "
        f"{statistics.median(works):.3f} s"
    )
    print(
        f"  child rchar, median: {statistics.median(rchars) / 1e6:.1f} MB "
        f"(model bytes on disk: {files * file_gb} GB); block-device read_bytes: "
        f"{statistics.median(reads) / 1e6:.1f} MB"
    )
    print(f"  storage requests in the last run: {sum(fakes.storage.counters.requests.values())}")


def shared_store(fakes: Fakes, tmp: Path, runs: int, processes: int) -> None:
    sizes_mb = [16, 32, 24, 8, 40, 16]
    first_id = 1000 * processes
    ids, total = [], 0
    for index, size_mb in enumerate(sizes_mb):
        version = first_id + index
        data = model_bytes(f"shared-{version}", size_mb * 1024 * 1024)
        name = f"s_{version}.safetensors"
        fakes.civitai.add(version, files=[CivitaiFile(version * 10, name, data)])
        ids.append(str(version))
        total += len(data)
    seconds, ratios, codes = [], [], []
    for run in range(runs):
        fakes.reset_counters()
        store = tmp / f"shared-{processes}-{run}"
        started = time.perf_counter()
        children = [
            _child(fakes, store, tmp / f"pod-{processes}-{run}-{n}", ",".join(ids))
            for n in range(processes)
        ]
        for child in children:
            child.communicate()
        seconds.append(time.perf_counter() - started)
        codes.append([child.returncode for child in children])
        ratios.append(fakes.storage.counters.bytes_served / total)
    print(
        f"shared store, {processes} concurrent processes, {len(ids)} files, "
        f"{total / 1e6:.0f} MB in all:"
    )
    print(f"  bytes served / sum of sizes per run: {', '.join(f'{r:.2f}' for r in ratios)}")
    print(f"  exit codes per run: {codes}")
    print(f"  wall time, median: {statistics.median(seconds):.2f} s")


class _Bucket:
    """Caps writes at `rate` bytes/s: the simulated network volume."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.started = time.perf_counter()
        self.written = 0

    def write(self, handle: BinaryIO, chunk: bytes) -> None:
        handle.write(chunk)
        self.written += len(chunk)
        ahead = self.written / self.rate - (time.perf_counter() - self.started)
        if ahead > 0:
            time.sleep(ahead)


async def _download(url: str, target: Path, bucket: _Bucket | None) -> None:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        with target.open("wb") as handle:
            async for chunk in response.content.iter_chunked(1 << 20):
                if bucket is None:
                    handle.write(chunk)
                else:
                    bucket.write(handle, chunk)


def _copy(source: Path, target: Path, bucket: _Bucket) -> None:
    with source.open("rb") as reader, target.open("wb") as handle:
        while chunk := reader.read(1 << 20):
            bucket.write(handle, chunk)


def fast_path(fakes: Fakes, tmp: Path, volume_mb_s: float, size_mb: int) -> None:
    data = model_bytes("fast-path", size_mb * 1024 * 1024)
    url = fakes.storage.put("fast-path", data)
    rate = volume_mb_s * 1e6
    local, volume = tmp / "local", tmp / "volume"
    local.mkdir()
    volume.mkdir()

    started = time.perf_counter()
    asyncio.run(_download(url, volume / "direct.bin", _Bucket(rate)))
    direct = time.perf_counter() - started

    started = time.perf_counter()
    asyncio.run(_download(url, local / "fast.bin", None))
    usable = time.perf_counter() - started
    _copy(local / "fast.bin", volume / "fast.bin", _Bucket(rate))
    stored = time.perf_counter() - started
    network = len(data) / usable / 1e6
    print(
        f"fast path, one {len(data) / 1e6:.0f} MB file, volume writes capped at "
        f"{volume_mb_s:.0f} MB/s, loopback network ≈ {network:.0f} MB/s:"
    )
    print(f"  direct to the volume:  usable and stored after {direct:.2f} s")
    print(
        f"  local disk, then move: usable (from local disk) after {usable:.2f} s, "
        f"stored on the volume after {stored:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--file-gb", type=int, default=20)
    parser.add_argument("--volume-mb-s", type=float, default=50.0)
    parser.add_argument("--fast-path-mb", type=int, default=128)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Fakes() as fakes:
        warm_start(fakes, Path(tmp), args.runs, args.files, args.file_gb)
        for processes in (2, 4):
            shared_store(fakes, Path(tmp), max(1, args.runs // 2), processes)
        fast_path(fakes, Path(tmp), args.volume_mb_s, args.fast_path_mb)


if __name__ == "__main__":
    main()
