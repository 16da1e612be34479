"""Custom node packs: cold install, warm start, and ComfyUI-Manager's pack-by-pack pip.

Eight registry packs (the test suite's fake Comfy Registry and storage hosts, in this process),
each with a requirements.txt of three small wheels from a local index (24 distinct wheels, some
with dependencies of their own, one pulling torch), go into a fresh venv that has a fake torch:

    cold     `provision_nodes`: resolve, fetch, unpack, ONE uv pass under the torch pin, place
    warm     `provision_nodes` again on the same workspace (records only: no network, no uv)
    pip-1by1 what ComfyUI-Manager does after fetching: `python -m pip install <line>` for every
             line of every pack's requirements.txt, into a fresh venv (requirements only)

Caches start empty for every run (UV_CACHE_DIR per run, PIP_NO_CACHE_DIR), both installers use
only the local index. Prints each median over the runs, in seconds.

    python benchmarks/bench_nodes.py [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKS = 8


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests"))
    sys.path.insert(0, str(REPO / "src"))
    from fakes.registry import FakeRegistry, node_pack_files
    from fakes.storage import FakeStorage
    from fakes.wheels import build_wheel

    with tempfile.TemporaryDirectory(prefix="bench-nodes-") as scratch:
        root = Path(scratch)
        index = root / "wheels"
        build_wheel(index, "torch", "2.5.0")
        requirements: list[list[str]] = []
        for pack in range(PACKS):
            names = [f"lib-{pack}-{n}" for n in range(3)]
            build_wheel(index, names[0], "1.0.0", requires=(f"lib-{(pack + 1) % PACKS}-2",))
            build_wheel(index, names[1], "1.0.0", requires=("torch",) if pack == 0 else ())
            build_wheel(index, names[2], "1.0.0")
            requirements.append(names)
        os.environ |= {"UV_FIND_LINKS": str(index), "UV_OFFLINE": "1"}
        os.environ |= {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(index), "PIP_NO_CACHE_DIR": "1"}
        storage = FakeStorage()
        registry = FakeRegistry(storage)
        for pack, names in enumerate(requirements):
            files = node_pack_files(f"Bench{pack}", requirements="\n".join(names) + "\n")
            registry.publish(f"bench-pack-{pack}", "1.0.0", files)
        storage.server.start()
        registry.server.start()
        times: dict[str, list[float]] = {"cold": [], "warm": [], "pip-1by1": []}
        try:
            for run in range(args.runs):
                work = root / f"run{run}"
                python = _venv(work / "venv", index, with_pip=False)
                os.environ["UV_CACHE_DIR"] = str(work / "uv-cache")
                nodes = ",".join(f"bench-pack-{p}@1.0.0" for p in range(PACKS))
                for phase in ("cold", "warm"):
                    started = time.perf_counter()
                    report = _provision(work, registry.url, python, nodes)
                    times[phase].append(time.perf_counter() - started)
                    assert report.ok, [p.to_json() for p in report.packs]
                pip_python = _venv(work / "pip-venv", index, with_pip=True)
                started = time.perf_counter()
                for names in requirements:
                    for line in names:
                        subprocess.run(
                            [pip_python, "-m", "pip", "install", "-q", line],
                            check=True,
                        )
                times["pip-1by1"].append(time.perf_counter() - started)
        finally:
            registry.server.stop()
            storage.server.stop()
    print(f"{PACKS} packs × 3 requirements, {args.runs} runs, medians:")
    for phase, values in times.items():
        print(f"  {phase:<9} {statistics.median(values):7.3f} s   (runs: {_fmt(values)})")


def _provision(work: Path, registry: str, python: str, nodes: str):  # type: ignore[no-untyped-def]
    from ignition.nodes_pipeline import provision_nodes
    from ignition.progress import RunDisplay
    from ignition.settings import Settings

    settings = Settings(
        comfyui_nodes=nodes,
        workspace=work / "workspace",
        comfy_registry_endpoint=registry,
        comfyui_python=python,
        run_dir=work / "run",
    )
    with Path(os.devnull).open("w") as quiet:
        display = RunDisplay(None, stream=quiet, tty=False)
        return asyncio.run(provision_nodes(settings, display=display))


def _venv(path: Path, index: Path, *, with_pip: bool) -> str:
    import uv

    flags = [] if with_pip else ["--without-pip"]
    subprocess.run([sys.executable, "-m", "venv", *flags, str(path)], check=True)
    python = str(path / "bin" / "python")
    subprocess.run(
        [uv.find_uv_bin(), "pip", "install", "-q", "--python", python, "--no-index",
         "--find-links", str(index), "torch==2.5.0"],
        check=True,
    )  # fmt: skip
    return python


def _fmt(values: list[float]) -> str:
    return ", ".join(f"{value:.3f}" for value in values)


if __name__ == "__main__":
    main()
