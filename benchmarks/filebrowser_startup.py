"""How long the file browser takes from spawn to answering HTTP, its memory, and SIGTERM to exit.

The workspace holds many model files, one of them 20 GB (sparse, so it costs no disk): start-up
must not depend on how much is stored, because nothing is indexed or hashed.

    python benchmarks/filebrowser_startup.py [--runs 5] [--files 500]
"""

from __future__ import annotations

import argparse
import http.client
import os
import secrets
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import psutil

from ignition.run.filebrowser import filebrowser_service
from ignition.settings import load_settings


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _fill(workspace: Path, files: int) -> None:
    loras = workspace / "ComfyUI" / "models" / "loras"
    loras.mkdir(parents=True)
    for index in range(files):
        (loras / f"lora_{index:04d}.safetensors").write_bytes(b"\0" * 1024)
    with (workspace / "ComfyUI" / "models" / "big.safetensors").open("wb") as big:
        big.truncate(20 * 1024**3)


def _answers(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/")
        return connection.getresponse().status < 500
    except OSError:
        return False
    finally:
        connection.close()


def _one_run(root: Path, run: int) -> tuple[float, float, float]:
    settings = load_settings(
        workspace=root / "workspace",
        run_dir=root / f"run{run}",
        filebrowser_port=_free_port(),
        filebrowser_password=secrets.token_urlsafe(24),
    )
    spec = filebrowser_service(settings, bind="127.0.0.1")
    assert spec is not None
    started = time.perf_counter()
    process = psutil.Popen(
        list(spec.argv),
        env={**os.environ, **spec.env},
        cwd=spec.cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        while not _answers(settings.filebrowser_port):
            if process.poll() is not None:
                raise SystemExit(f"copyparty exited with {process.returncode}")
            time.sleep(0.01)
        ready_s = time.perf_counter() - started
        rss_mib = process.memory_info().rss / 1024**2
    finally:
        stopping = time.perf_counter()
        process.terminate()
        process.wait(30)
    return ready_s, rss_mib, time.perf_counter() - stopping


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--files", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ignition-fb-bench-") as tmp:
        root = Path(tmp)
        _fill(root / "workspace", args.files)
        results = [_one_run(root, run) for run in range(args.runs)]
    print(f"copyparty, {args.runs} runs, workspace of {args.files} files + one 20 GB file:")
    for label, values, unit in (
        ("spawn → HTTP ready", [ready for ready, _, _ in results], "s"),
        ("RSS when ready", [rss for _, rss, _ in results], "MiB"),
        ("SIGTERM → exited", [stop for _, _, stop in results], "s"),
    ):
        ordered = sorted(values)
        print(
            f"  {label:<20} median {statistics.median(ordered):7.3f} {unit}"
            f"   min {ordered[0]:7.3f}   max {ordered[-1]:7.3f}"
        )


if __name__ == "__main__":
    main()
