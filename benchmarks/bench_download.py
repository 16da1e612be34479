"""Download speed, CPU and memory: Ignition against aria2c and huggingface_hub, side by side.

A throttled loopback hub (the test suite's fake Hugging Face and storage hosts, in their own
process) serves files generated on the fly from a seed, so several GB need no disk on the server
side. Every tool fetches the same files through the same HF resolve URLs (a 302 to the presigned
storage host) in the same run, in turns:

    ignition     `ignition download --hf …` (start-up, resolve, fetch, sha256, place)
    engine       Ignition's fetch_file alone, all files at once (no CLI start-up or resolve)
    aria2c       `aria2c -x16 -s16 -j8` (verifies nothing)
    hf-1         huggingface_hub.hf_hub_download, one file at a time
    hf-pool3     huggingface_hub.hf_hub_download, three files at a time

For each it prints wall time, the share of the link limit reached over the whole run and "in
transfer" (from the first to the last body byte the storage host sent: without start-up and
resolving), CPU seconds (user + system of the tool's process tree) and peak RSS, as medians over
the runs. Downloads go to a temporary directory that is removed after each run.

    python benchmarks/bench_download.py                   # mix: 2 × 400 MB + 6 × 50 MB
    python benchmarks/bench_download.py --scenario big    # one 4 GB file (peak RSS)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MB = 1_000_000
REPO_ID = "bench/models"

SCENARIOS: dict[str, list[int]] = {
    "mix": [400 * MB] * 2 + [50 * MB] * 6,
    "big": [4000 * MB],
    "smoke": [40 * MB] * 2 + [5 * MB] * 3,
}


@dataclass
class Hub:
    url: str
    files: dict[str, tuple[int, str]]  # name → (size, sha256)


# (the hub, a work dir) → the command line that downloads every file into the work dir
Command = Callable[[Hub, Path], list[str | Path]]


@dataclass
class Sample:
    seconds: float
    cpu_s: float
    peak_rss_mb: float
    # First to last body byte, as the storage host saw them: the run without start-up and
    # resolving, and without what happens after the last byte (hashing the tail, placing).
    transfer_s: float = 0.0


# --- the hub, in its own process -----------------------------------------------------------------
def serve(sizes: list[int], per_connection_bps: float, total_bps: float) -> None:
    """Run the fake HF hub + storage until stdin closes; print its URL and files as JSON.

    Each line on stdin asks for the seconds between the first and the last body byte the
    storage sent since the previous line: the transfer phase of the run in between."""
    sys.path.insert(0, str(REPO / "tests"))
    from fakes.huggingface import FakeHuggingFace
    from fakes.storage import FakeStorage, PatternBlob

    storage = FakeStorage(
        per_connection_bps=per_connection_bps, total_bps=total_bps, chunk_bytes=256 * 1024
    )
    hub = FakeHuggingFace(storage)
    files = {name: PatternBlob(size, seed) for seed, (name, size) in enumerate(named(sizes))}
    for blob in files.values():
        blob.sha256()  # now, not inside the first timed request
    hub.add(REPO_ID, dict(files))
    storage.server.start()
    hub.server.start()
    listing = {name: (blob.size, blob.sha256()) for name, blob in files.items()}
    print(json.dumps({"hf": hub.url, "files": listing}), flush=True)
    for _ in sys.stdin:
        first, last = storage.sent_span
        storage.sent_span = (0.0, 0.0)
        print(json.dumps({"transfer_s": last - first}), flush=True)
    hub.server.stop()
    storage.server.stop()


def named(sizes: list[int]) -> list[tuple[str, int]]:
    return [(f"file{i}-{size // MB}mb.bin", size) for i, size in enumerate(sizes)]


# --- the tools ---------------------------------------------------------------------------------
def ignition_command(hub: Hub, target: Path) -> list[str | Path]:
    entries = ",".join(f"{REPO_ID}/{name}:checkpoints" for name in hub.files)
    return [sys.executable, "-m", "ignition", "download", "--hf", entries, "--models-dir", target]


_ENGINE_SCRIPT = """
import asyncio, json, sys
from pathlib import Path
from ignition._http import HttpClient
from ignition.fetch import fetch_file
from ignition.fetch.progress import NoProgress
from ignition.records import FetchRequest
hub, repo, target, files = sys.argv[1], sys.argv[2], Path(sys.argv[3]), json.loads(sys.argv[4])
requests = [
    FetchRequest(f"{hub}/{repo}/resolve/main/{name}", target / name, size, sha, sha, name)
    for name, (size, sha) in files.items()
]
async def main():
    async with HttpClient(connections=16) as client:
        await asyncio.gather(*(fetch_file(client, r, NoProgress()) for r in requests))
asyncio.run(main())
"""


def engine_command(hub: Hub, target: Path) -> list[str | Path]:
    files = json.dumps(hub.files)
    return [sys.executable, "-c", _ENGINE_SCRIPT, hub.url, REPO_ID, target / "files", files]


def aria2c_command(hub: Hub, target: Path) -> list[str | Path]:
    listing = target / "aria2-input.txt"
    target.mkdir(parents=True, exist_ok=True)
    listing.write_text(
        "".join(f"{hub.url}/{REPO_ID}/resolve/main/{n}\n  out={n}\n" for n in hub.files)
    )
    return [
        "aria2c", "-x16", "-s16", "-j8", "-i", listing, "-d", target / "files",
        "--console-log-level=error", "--summary-interval=0", "--download-result=hide",
        "--allow-overwrite=true", "--auto-file-renaming=false",
    ]  # fmt: skip


_HF_SCRIPT = """
import sys
from concurrent.futures import ThreadPoolExecutor
from huggingface_hub import hf_hub_download
workers, cache, repo, names = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
with ThreadPoolExecutor(workers) as pool:
    list(pool.map(lambda n: hf_hub_download(repo, n, cache_dir=cache), names))
"""


def hf_command(workers: int) -> Command:
    def command(hub: Hub, target: Path) -> list[str | Path]:
        cache = target / "hf-cache"
        return [sys.executable, "-c", _HF_SCRIPT, str(workers), cache, REPO_ID, *hub.files]

    return command


def run_tool(command: list[str | Path], env: dict[str, str]) -> Sample:
    """Run one tool to completion; wall time, and CPU and peak RSS of its process tree."""
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # wait4 gives this child's own rusage (its waited-for descendants included), not the sum
    # over every child this script ever had.
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    errors = process.stderr.read().decode() if process.stderr else ""
    if process.returncode != 0:
        raise RuntimeError(f"{command[0]!s} failed ({process.returncode}): {errors[-2000:]}")
    return Sample(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


# --- the run -----------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="mix")
    parser.add_argument("--runs", type=int, default=3, help="runs per tool (median reported)")
    parser.add_argument("--hf-runs", type=int, default=1, help="runs for the slow hf tools")
    parser.add_argument("--tools", default="ignition,engine,aria2c,hf-1,hf-pool3")
    parser.add_argument("--per-connection-mbps", type=float, default=20.0)
    parser.add_argument("--link-mbps", type=float, default=200.0)
    parser.add_argument("--dir", type=Path, default=None, help="where downloads go (temp)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = SCENARIOS[args.scenario]
    per_connection, link = args.per_connection_mbps * MB, args.link_mbps * MB
    if args.serve:
        serve(sizes, per_connection, link)
        return 0

    tools: dict[str, Command] = {
        "ignition": ignition_command,
        "engine": engine_command,
        "aria2c": aria2c_command,
        "hf-1": hf_command(1),
        "hf-pool3": hf_command(3),
    }
    chosen = [t.strip() for t in args.tools.split(",") if t.strip()]
    if "aria2c" in chosen and shutil.which("aria2c") is None:
        print("aria2c not found (apt-get install -y aria2): skipped", file=sys.stderr)
        chosen.remove("aria2c")
    total_bytes = sum(sizes)

    hub_process = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--scenario", args.scenario,
         "--per-connection-mbps", str(args.per_connection_mbps),
         "--link-mbps", str(args.link_mbps)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=_env({}),
    )  # fmt: skip
    assert hub_process.stdout is not None and hub_process.stdin is not None
    ready = json.loads(hub_process.stdout.readline())
    served = Hub(ready["hf"], {name: (size, sha) for name, (size, sha) in ready["files"].items()})
    env = _env(
        {
            "HF_ENDPOINT": served.url,
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        }
    )
    # Linux charges a child with its parent's resident set at exec (ru_maxrss), so an empty
    # child shows the floor under every RSS below.
    floor_mb = run_tool(["true"], env).peak_rss_mb
    samples: dict[str, list[Sample]] = {tool: [] for tool in chosen}
    try:
        for round_ in range(max(args.runs, args.hf_runs)):
            for tool in chosen:
                wanted = args.hf_runs if tool.startswith("hf") else args.runs
                if round_ >= wanted:
                    continue
                work = Path(tempfile.mkdtemp(prefix=f"bench-{tool}-", dir=args.dir))
                # Every tool starts with no dirty pages left by the one before: the kernel
                # writing those back during a run was charged to whoever ran next.
                os.sync()
                try:
                    run_env = {**env, "HF_HOME": str(work / "hf-home"), "HOME": str(work)}
                    sample = run_tool(tools[tool](served, work), run_env)
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                hub_process.stdin.write(b"\n")
                hub_process.stdin.flush()
                sample.transfer_s = json.loads(hub_process.stdout.readline())["transfer_s"]
                samples[tool].append(sample)
                print(
                    f"  run {round_ + 1} {tool:9} {sample.seconds:7.2f} s "
                    f"{total_bytes / sample.seconds / link:5.2f} of link "
                    f"({total_bytes / sample.transfer_s / link:4.2f} first to last byte) "
                    f"cpu {sample.cpu_s:6.2f} s rss {sample.peak_rss_mb:6.1f} MB",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        hub_process.stdin.close()
        hub_process.wait(timeout=30)

    print(
        f"\nscenario {args.scenario}: {len(sizes)} files, {total_bytes / MB:,.0f} MB; "
        f"link {args.link_mbps:g} MB/s, {args.per_connection_mbps:g} MB/s per connection; "
        f"{os.cpu_count()} CPUs; an empty child process shows {floor_mb:.0f} MB peak RSS"
    )
    print(
        f"{'tool':10} {'runs':>4} {'time s':>8} {'of link':>8} {'in transfer':>12} "
        f"{'CPU s':>7} {'peak RSS MB':>12}"
    )
    medians: dict[str, Sample] = {}
    for tool, runs in samples.items():
        if not runs:
            continue
        median = Sample(
            statistics.median(s.seconds for s in runs),
            statistics.median(s.cpu_s for s in runs),
            statistics.median(s.peak_rss_mb for s in runs),
            statistics.median(s.transfer_s for s in runs),
        )
        medians[tool] = median
        print(
            f"{tool:10} {len(runs):>4} {median.seconds:>8.2f} "
            f"{total_bytes / median.seconds / link:>8.2f} "
            f"{total_bytes / median.transfer_s / link:>12.2f} {median.cpu_s:>7.2f} "
            f"{median.peak_rss_mb:>12.1f}"
        )
    for ours in ("ignition", "engine"):
        if ours in medians and "aria2c" in medians:
            mine, theirs = medians[ours], medians["aria2c"]
            print(
                f"{ours} / aria2c: time {mine.seconds / theirs.seconds:.2f}×, "
                f"CPU {mine.cpu_s / theirs.cpu_s:.2f}×, "
                f"RSS {mine.peak_rss_mb / theirs.peak_rss_mb:.2f}×"
            )
    return 0


def _env(extra: dict[str, str]) -> dict[str, str]:
    """This environment, with Ignition's source importable and nothing leaking in from HF_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]).strip(
        os.pathsep
    )
    env.update(extra)
    return env


if __name__ == "__main__":
    sys.exit(main())
