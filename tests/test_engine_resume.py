"""Partials across runs: kill -9 and rerun, changed sources, complete partials, a full disk."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import ignition
from fakes.content import noise
from fakes.storage import FakeStorage
from ignition._http import HttpClient
from ignition.fetch import Tuning, fetch_file
from ignition.fetch.progress import NoProgress
from ignition.fetch.resume import PartialState, part_path, save_partial, state_path
from ignition.fetch.segments import ByteRanges

MB = 1 << 20
FETCH_ONCE = Path(__file__).parent / "fakes" / "fetch_once.py"
SRC = Path(ignition.__file__).parent.parent


def write_partial(request, data: bytes, done: list[tuple[int, int]], **state) -> None:
    """A partial as an earlier run would have left it: bytes at their offsets and the record."""
    staging = request.staging_path
    staging.parent.mkdir(parents=True, exist_ok=True)
    part = bytearray(len(data))
    for start, end in done:
        part[start:end] = data[start:end]
    part_path(staging).write_bytes(part)
    fields = {"identity": request.identity, "size": len(data), **state}
    save_partial(staging, PartialState(done=ByteRanges(done), **fields))


async def fetch_in_child(storage: FakeStorage, request, connections: int = 4):
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(FETCH_ONCE),
        request.url,
        str(request.staging_path),
        request.expected_sha256,
        str(request.expected_size),
        str(connections),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )


async def test_kill_9_then_rerun_transfers_little_more_than_the_file(
    storage: FakeStorage, make_request
) -> None:
    storage.throttle(per_connection_bps=16 * MB, total_bps=8 * MB)  # ~2 s: time to kill it
    request, blob = make_request(noise(16 * MB))

    child = await fetch_in_child(storage, request)
    while storage.counters.bytes_served < blob.size // 2:
        assert child.returncode is None, await child.communicate()
        await asyncio.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    await child.wait()
    assert state_path(request.staging_path).exists()
    assert not request.staging_path.exists()

    rerun = await fetch_in_child(storage, request)
    out, err = await rerun.communicate()

    assert rerun.returncode == 0, err.decode()
    assert out.decode().split() == ["ok", blob.sha256()]
    assert hashlib.sha256(request.staging_path.read_bytes()).hexdigest() == blob.sha256()
    assert storage.counters.bytes_served <= 1.1 * blob.size


async def test_a_partial_resumes_only_its_missing_ranges(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    request, blob = make_request(noise(4 * MB))
    write_partial(request, noise(4 * MB), [(0, MB), (2 * MB, 3 * MB + 17)])

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == blob.sha256()
    missing = MB + (MB - 17)
    # Only the holes, plus what a connection had in flight when another one stole its tail.
    assert missing <= storage.counters.bytes_served <= missing + 256 * 1024


async def test_a_partial_of_another_source_is_thrown_away(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    request, blob = make_request(noise(2 * MB))
    write_partial(request, noise(2 * MB, seed=99), [(0, MB)], identity="sha256-of-old-version")

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == blob.sha256()
    assert blob.size <= storage.counters.bytes_served <= blob.size + 256 * 1024


async def test_a_complete_partial_answered_416_is_finished_without_a_loop(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    data = noise(MB)
    request, blob = make_request(data)
    # A one-stream download whose length was unknown, killed after its last byte was written.
    write_partial(request, data, [(0, len(data))], size=None)

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == blob.sha256()
    assert storage.statuses == [416]


async def test_a_complete_but_corrupt_partial_is_fetched_again(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    request, blob = make_request(noise(MB))
    write_partial(request, noise(MB, seed=5), [(0, MB)])

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == blob.sha256()
    assert blob.size <= storage.counters.bytes_served <= blob.size + 256 * 1024


async def test_a_grown_file_restarts_the_partial(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    # Same identity but another size: only possible without a sha256 (ETag + size identities).
    request, blob = make_request(noise(2 * MB), expected_size=None, expected_sha256=None)
    write_partial(request, noise(MB), [(0, MB // 2)], size=MB)

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert (fetched.size_bytes, fetched.sha256) == (blob.size, blob.sha256())


def _mount_namespaces_work() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(
    not _mount_namespaces_work() and not os.environ.get("IGNITION_TEST_REQUIRE_TOOLS"),
    reason="needs `unshare -rm` (user + mount namespaces) to mount a tiny tmpfs",
)
async def test_a_full_disk_fails_clearly_and_leaves_no_partial(
    storage: FakeStorage, make_request, tmp_path: Path
) -> None:
    request, _ = make_request(noise(4 * MB))
    disk = tmp_path / "disk"
    disk.mkdir()
    staging = disk / "staging" / "model.safetensors"
    # A 1 MiB tmpfs in a private mount namespace: a real ENOSPC, nothing mounted for anyone else.
    script = (
        f'mount -t tmpfs -o size=1m tmpfs "{disk}" && '
        f'"{sys.executable}" "{FETCH_ONCE}" "$@"; status=$?; '
        f'find "{disk}" -type f; exit $status'
    )
    child = await asyncio.create_subprocess_exec(
        "unshare",
        "-rm",
        "sh",
        "-c",
        script,
        "sh",
        request.url,
        str(staging),
        request.expected_sha256,
        str(request.expected_size),
        "4",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    out, err = await child.communicate()

    lines = out.decode().splitlines()
    assert child.returncode == 1, err.decode()
    assert lines[0].startswith("error IGN404 child: disk full writing"), lines
    assert f"the file needs {4 * MB} bytes" in lines[0]
    assert lines[1:] == []  # `find` saw no file left on the full disk
