"""The client's own keep-alive connections for ranges (_http/wire.py): reuse, hang-ups, TLS,
proxies, and answers longer than the file."""

from __future__ import annotations

import hashlib
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from fakes.content import noise
from fakes.proxy import FakeProxy
from fakes.storage import FakeStorage
from ignition._http import HttpClient, Proxies, RetryPolicy, tls_context
from ignition.errors import TransferFailedError
from ignition.fetch import Tuning, fetch_file
from ignition.fetch.progress import NoProgress
from ignition.records import FetchRequest
from ignition.settings import Settings
from support import free_port

MB = 1 << 20


class RecordedSleeps:
    """A RetryPolicy sleep that records every backoff instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def _direct_request(
    storage: FakeStorage, data: bytes, tmp_path: Path, key: str = "model"
) -> FetchRequest:
    """A request straight to a presigned storage link (no API in front)."""
    digest = hashlib.sha256(data).hexdigest()
    return FetchRequest(
        url=storage.put(key, data),
        staging_path=tmp_path / "staging" / "model.safetensors",
        expected_size=len(data),
        expected_sha256=digest,
        identity=f"sha256:{digest}",
        label="model.safetensors",
    )


async def test_segments_reuse_keep_alive_connections(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    request, blob = make_request(noise(6 * MB))
    small_pieces = Tuning(**{**tuning.__dict__, "piece_bytes": 512 * 1024})

    fetched = await fetch_file(client, request, NoProgress(), tuning=small_pieces)

    assert fetched.sha256 == blob.sha256()
    ranged = storage.statuses.count(206)
    # One connection per slot of the budget (plus the HTTP client's own for the first
    # request), however many ranges went over them.
    assert ranged > client.connections + 1
    assert len(storage.connections) <= client.connections + 1


async def test_a_server_without_keep_alive_gets_a_connection_per_range(
    storage: FakeStorage, client: HttpClient, make_request, tuning: Tuning
) -> None:
    storage.faults.no_keep_alive = True
    request, blob = make_request(noise(3 * MB))

    fetched = await fetch_file(client, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == blob.sha256()
    assert len(storage.connections) == storage.statuses.count(206)


async def test_a_kept_connection_the_server_dropped_is_replaced_without_a_retry(
    storage: FakeStorage, make_request, tuning: Tuning
) -> None:
    sleeps = RecordedSleeps()
    storage.faults.hangup_reused = 3
    request, blob = make_request(noise(4 * MB))
    small_pieces = Tuning(**{**tuning.__dict__, "piece_bytes": 512 * 1024})

    async with HttpClient(connections=2, read_timeout_s=5, retry=RetryPolicy(sleep=sleeps)) as http:
        fetched = await fetch_file(http, request, NoProgress(), tuning=small_pieces)

    assert fetched.sha256 == blob.sha256()
    assert storage.faults.hangup_reused == 0  # every hang-up happened …
    assert sleeps.delays == []  # … and none was counted as a failure to back off from


@pytest.fixture
def trusted_ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[trustme.CA]:
    """A private CA that this process's TLS context trusts (through SSL_CERT_FILE)."""
    ca = trustme.CA()
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    tls_context.cache_clear()
    yield ca
    tls_context.cache_clear()


async def test_ranges_are_fetched_over_tls(
    trusted_ca: trustme.CA, tmp_path: Path, tuning: Tuning
) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trusted_ca.issue_cert("127.0.0.2").configure_cert(server_tls)
    storage = FakeStorage(per_connection_bps=16 * MB, tls=server_tls)
    storage.server.start()
    try:
        data = noise(3 * MB)
        request = _direct_request(storage, data, tmp_path)
        assert request.url.startswith("https://127.0.0.2:")

        async with HttpClient(connections=4, read_timeout_s=5) as http:
            fetched = await fetch_file(http, request, NoProgress(), tuning=tuning)
    finally:
        storage.server.stop()

    assert fetched.sha256 == request.expected_sha256
    assert storage.statuses.count(206) > 1


async def test_an_untrusted_certificate_fails_with_a_clear_error(
    tmp_path: Path, tuning: Tuning
) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("127.0.0.2").configure_cert(server_tls)  # a CA nobody trusts
    storage = FakeStorage(tls=server_tls)
    storage.server.start()
    try:
        request = _direct_request(storage, noise(MB), tmp_path)
        async with HttpClient(connections=2, read_timeout_s=5) as http:
            with pytest.raises(TransferFailedError) as failure:
                await fetch_file(http, request, NoProgress(), tuning=tuning)
    finally:
        storage.server.stop()

    assert "certificate verify failed" in str(failure.value).lower()
    assert "SSL_CERT_FILE" in failure.value.hint
    assert storage.counters.requests == {}  # refused at the handshake, once

    assert not (tmp_path / "staging" / "model.safetensors").exists()


def test_no_proxy_names_the_hosts_reached_directly() -> None:
    proxies = Proxies(https="http://proxy.internal:3128", no_proxy=" .cdn.example, 10.0.0.0/8,::1")
    assert proxies.for_url("https://hf.co/file") == "http://proxy.internal:3128"
    assert proxies.for_url("http://hf.co/file") is None  # only https goes through that proxy
    assert proxies.for_url("https://cdn.example/f") is None
    assert proxies.for_url("https://eu.cdn.example/f") is None
    assert proxies.for_url("https://notcdn.example/f") is not None
    assert proxies.for_url("https://10.1.2.3/f") is None
    assert proxies.for_url("https://[::1]:8443/f") is None
    assert Proxies(https="http://p:1", no_proxy="*").for_url("https://hf.co/") is None
    assert Proxies(https="http://p:1", no_proxy="hf.co:8443").for_url("https://hf.co/") is not None


def test_settings_read_the_proxy_variables_in_either_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost")
    proxies = Proxies.of(Settings())
    assert proxies == Proxies(https="http://proxy.internal:3128", no_proxy="localhost")
    assert proxies.hosts == ["proxy.internal"]


async def test_ranges_behind_a_proxy_go_through_it(
    storage: FakeStorage, tmp_path: Path, tuning: Tuning
) -> None:
    proxy = FakeProxy()
    proxy.server.start()
    try:
        request = _direct_request(storage, noise(3 * MB), tmp_path)
        async with HttpClient(connections=4, proxies=Proxies(http=proxy.url)) as http:
            fetched = await fetch_file(http, request, NoProgress(), tuning=tuning)
    finally:
        proxy.server.stop()

    assert fetched.sha256 == request.expected_sha256
    assert len(proxy.seen) == storage.statuses.count(206) > 1  # every range, through the proxy


async def test_the_environment_is_not_read_by_the_client(
    storage: FakeStorage, tmp_path: Path, tuning: Tuning, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nothing listens
    request = _direct_request(storage, noise(MB), tmp_path)

    async with HttpClient(connections=2) as http:  # no proxies given: direct
        fetched = await fetch_file(http, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == request.expected_sha256


async def test_ranges_capped_by_the_server_are_continued_without_backoff(
    storage: FakeStorage, make_request, tuning: Tuning
) -> None:
    sleeps = RecordedSleeps()
    storage.faults.range_cap = 256 * 1024  # every answer shorter than what was asked
    request, blob = make_request(noise(3 * MB))

    async with HttpClient(connections=4, read_timeout_s=5, retry=RetryPolicy(sleep=sleeps)) as http:
        fetched = await fetch_file(http, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == blob.sha256()
    assert storage.statuses.count(206) >= blob.size // (256 * 1024)
    assert storage.counters.bytes_served == blob.size  # short answers waste nothing
    assert sleeps.delays == []


async def test_a_link_with_spaces_and_non_ascii_is_escaped_on_the_wire(
    storage: FakeStorage, tmp_path: Path, tuning: Tuning
) -> None:
    # Raw in the link, as a Location header may have it.
    request = _direct_request(storage, noise(2 * MB), tmp_path, key="flux dev ü.safetensors")

    async with HttpClient(connections=4, read_timeout_s=5) as http:
        fetched = await fetch_file(http, request, NoProgress(), tuning=tuning)

    assert fetched.sha256 == request.expected_sha256
    assert storage.statuses.count(206) > 1 and set(storage.statuses) == {206}
