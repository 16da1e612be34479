"""The engine on a healthy store: segments, the shared budget, servers without Range or length."""

from __future__ import annotations

import asyncio
import hashlib
import os

from fakes.content import noise
from fakes.storage import FakeStorage, PatternBlob
from ignition._http import HttpClient
from ignition.fetch import Tuning, fetch_file
from ignition.fetch.disk import reserve, start_writeback, write_at
from ignition.fetch.progress import NoProgress
from ignition.fetch.resume import part_path, state_path

MB = 1 << 20


class CountingProgress:
    def __init__(self) -> None:
        self.done = 0
        self.total: int | None = None

    def set_total(self, total_bytes: int | None) -> None:
        self.total = total_bytes

    def advance(self, n_bytes: int) -> None:
        self.done += n_bytes

    def reset(self, done_bytes: int = 0) -> None:
        self.done = done_bytes


async def test_a_large_file_is_split_over_several_connections(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    storage.per_connection_bps = 4 * MB  # so one connection cannot finish before others join
    request, blob = make_request(noise(6 * MB))
    progress = CountingProgress()

    fetched = await fetch_file(client, request, progress, tuning=tuning)

    assert fetched.path == request.staging_path
    assert (
        fetched.sha256
        == blob.sha256()
        == hashlib.sha256(request.staging_path.read_bytes()).hexdigest()
    )
    assert fetched.size_bytes == blob.size
    assert 1 < storage.max_active <= client.connections
    # Work stealing cuts ranges short; what a cut connection had in flight is the only waste.
    assert storage.counters.bytes_served <= 1.1 * blob.size
    assert (progress.done, progress.total) == (blob.size, blob.size)
    assert not part_path(request.staging_path).exists()
    assert not state_path(request.staging_path).exists()


async def test_files_fetched_together_share_one_connection_budget(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    storage.per_connection_bps = 4 * MB
    requests = [make_request(noise(2 * MB, seed), name=f"f{seed}.safetensors") for seed in range(3)]

    results = await asyncio.gather(
        *(fetch_file(client, r, NoProgress(), tuning=tuning) for r, _ in requests)
    )

    assert [f.sha256 for f in results] == [b.sha256() for _, b in requests]
    assert storage.max_active == client.connections


async def test_a_pattern_blob_of_many_blocks_arrives_intact(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    pattern = PatternBlob(5 * MB + 12345, seed=7)  # what the benchmark serves, in GBs
    data = bytes(pattern.read(0, pattern.size))
    request, _ = make_request(data)

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == pattern.sha256() == hashlib.sha256(data).hexdigest()


async def test_a_server_ignoring_range_is_read_as_one_stream(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    storage.faults.ignore_range = True
    request, blob = make_request(noise(3 * MB))

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == blob.sha256()
    assert storage.statuses == [200]
    assert storage.counters.bytes_served == blob.size


async def test_a_body_without_length_is_read_to_its_end(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    storage.faults.no_length = True
    request, blob = make_request(noise(2 * MB), expected_size=None, expected_sha256=None)

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert (fetched.size_bytes, fetched.sha256) == (blob.size, blob.sha256())


async def test_an_empty_file_is_fetched(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    request, _ = make_request(b"", expected_size=None)

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert (fetched.size_bytes, fetched.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert request.staging_path.read_bytes() == b""


def test_a_staging_file_is_reserved_written_in_place_and_written_back(tmp_path) -> None:
    path = tmp_path / "model.part"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        reserve(fd, 4 * MB)
        assert write_at(fd, [b"a" * 1000, memoryview(b"b" * 24)], MB) == 1024
        start_writeback(fd, 0, 2 * MB)
        start_writeback(-1, 0, MB)  # advisory: a bad descriptor is ignored
        os.fsync(fd)
    finally:
        os.close(fd)

    assert path.stat().st_size == 4 * MB
    assert path.read_bytes()[MB : MB + 1024] == b"a" * 1000 + b"b" * 24
