"""Every fault ends in a verified file, or in no file and an error that says what happened."""

from __future__ import annotations

import hashlib

import pytest

from fakes.content import noise
from fakes.services import Fakes
from fakes.storage import FakeStorage, PatternBlob
from ignition._http import HttpClient, HttpError
from ignition.errors import (
    ChecksumMismatchError,
    NotAModelError,
    SizeMismatchError,
    TransferFailedError,
    TransferStalledError,
)
from ignition.fetch import Tuning, fetch_file
from ignition.fetch.progress import NoProgress
from ignition.fetch.resume import part_path, state_path
from ignition.records import FetchRequest
from support import FAST_RETRY

MB = 1 << 20


def nothing_left(request) -> bool:
    staging = request.staging_path
    return not any(p.exists() for p in (staging, part_path(staging), state_path(staging)))


@pytest.mark.parametrize("offsets", [[1], [65536], [1_000_000, 2_500_001], [4 * MB - 1]])
async def test_cut_connections_are_resumed_where_they_broke(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning, offsets: list[int]
) -> None:
    storage.faults.cut_at = list(offsets)
    request, blob = make_request(noise(4 * MB))

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == blob.sha256()
    assert storage.faults.cut_at == []  # every cut really happened
    assert storage.counters.bytes_served <= 1.1 * blob.size


async def test_a_burst_of_server_errors_is_ridden_out(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    storage.faults.statuses = [503, 500, 502, 503]
    request, blob = make_request(noise(2 * MB))

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == blob.sha256()
    assert storage.statuses[:4] == [503, 500, 502, 503]


async def test_429_without_retry_after_backs_off_and_continues(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    storage.faults.statuses = [429, 429, 429]
    request, blob = make_request(noise(2 * MB))

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == blob.sha256()


async def test_endless_errors_on_the_first_request_are_the_sources_to_explain(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    storage.faults.statuses = [503] * 1000
    request, _ = make_request(noise(MB))

    # The client retried it under its policy; the pipeline turns it into the source's message.
    with pytest.raises(HttpError, match="HTTP 503"):
        await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert storage.counters.requests == {"/blobs/cv-10": client.retry.attempts}
    assert not request.staging_path.exists()


async def test_endless_errors_mid_file_give_up_with_a_clear_error(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    storage.per_connection_bps = 2 * MB
    storage.faults.statuses, storage.faults.after_requests = [503] * 1000, 1
    request, _ = make_request(noise(MB))

    with pytest.raises(TransferFailedError, match=r"HTTP 503 .* gave up after \d+ failed requests"):
        await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert sum(storage.counters.requests.values()) <= 1 + 8 * tuning.max_failures
    assert not request.staging_path.exists()


async def test_a_stalled_connection_is_dropped_and_its_range_fetched_again(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    storage.faults.stall_at = [1_500_000]
    request, blob = make_request(noise(3 * MB))

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == blob.sha256()
    assert storage.faults.stall_at == []


async def test_a_server_that_never_sends_gives_up_as_stalled(
    storage: FakeStorage, make_request, tuning: Tuning
) -> None:
    storage.faults.stall_at = [0] * 50
    request, _ = make_request(noise(MB))
    quick = Tuning(**{**tuning.__dict__, "max_failures": 2})

    async with HttpClient(connections=2, read_timeout_s=0.2, retry=FAST_RETRY) as client:
        with pytest.raises(TransferStalledError, match=r"no bytes for 0\.2 s"):
            await fetch_file(client, request, NoProgress(), tuning=quick)

    assert not request.staging_path.exists()


async def test_corrupt_bytes_are_fetched_once_more(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    storage.faults.corrupt_at, storage.faults.corrupt_times = 777_777, 1
    request, blob = make_request(noise(2 * MB))

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == blob.sha256()
    assert storage.counters.bytes_served >= 2 * blob.size  # the whole file, twice


async def test_corrupt_bytes_twice_fail_with_both_hashes(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    storage.faults.corrupt_at, storage.faults.corrupt_times = 5, 2
    request, blob = make_request(noise(MB))

    with pytest.raises(ChecksumMismatchError) as caught:
        await fetch_file(client, request, NoProgress(), tuning=tuning)

    message = str(caught.value)
    assert blob.sha256() in message
    wrong = bytearray(noise(MB))
    wrong[5] ^= 0xFF
    assert hashlib.sha256(wrong).hexdigest() in message
    assert nothing_left(request)


async def test_an_expired_presigned_link_is_renewed_through_the_source(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    storage.faults.expire_after_bytes = 512 * 1024
    # Links are checked when a request starts: a cut makes the engine ask again, by then too late.
    # The cut comes 768 KiB into the last piece, so the link has served more than its limit by
    # then however the connections' starts happen to overlap.
    storage.faults.cut_at = [3 * MB + 768 * 1024]
    request, blob = make_request(noise(4 * MB))

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == blob.sha256()
    assert 403 in storage.statuses
    assert storage.links_issued > 1
    assert storage.counters.bytes_served <= 1.1 * blob.size


async def test_a_server_ignoring_range_survives_a_cut(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    storage.faults.ignore_range = True
    storage.faults.cut_at = [1_234_567]
    request, blob = make_request(noise(2 * MB))

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == blob.sha256()


async def test_an_html_page_is_not_saved_as_a_model(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    page = b"<!DOCTYPE html><html><body>Please log in</body></html>"
    request, _ = make_request(page)

    with pytest.raises(NotAModelError, match="page instead of model weights"):
        await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert not request.staging_path.exists()


async def test_a_missing_file_fails_at_once(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    request, _ = make_request(noise(1000), url=f"{storage.server.url}/blobs/gone")

    # The storage's own answer, for the pipeline to explain in the source's terms.
    with pytest.raises(HttpError, match="HTTP 404") as caught:
        await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert caught.value.status == 404
    assert storage.counters.requests == {"/blobs/gone": 1}


async def test_a_body_longer_than_the_file_is_never_written_past_its_size(
    fakes: Fakes, storage: FakeStorage, client: HttpClient, tuning: Tuning
) -> None:
    # The source says 1 KB; the server streams 200 MB without a length (chunked, no Range).
    storage.faults.no_length = True
    request = FetchRequest(
        url=storage.put("tiny", PatternBlob(200 * MB, 3)),
        staging_path=fakes.tmp_path / "staging" / "tiny.safetensors",
        expected_size=1024,
        expected_sha256=None,
        identity="size:1024",
        label="tiny.safetensors",
    )

    with pytest.raises(SizeMismatchError) as caught:
        await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert "more than the 1024 bytes" in str(caught.value)
    assert nothing_left(request)
    assert storage.counters.bytes_served < 200 * MB  # it stopped reading, too
