"""The address guard: requests and redirects that lead to loopback, private or link-local
addresses are refused before a connection is made, unless private addresses are allowed.

Loopback stands in for the internet here: a test that needs a public host injects a classifier
that calls 127.0.0.1 public, so the request, the redirect and the connection stay real."""

import asyncio
import hashlib
import ipaddress
from collections.abc import Callable
from pathlib import Path

import pytest

from fakes.civitai import CivitaiFile
from fakes.content import model_bytes, noise
from fakes.services import Fakes
from ignition._http import HttpClient, PrivateAddressError, is_public_address
from ignition._http.addresses import AddressGuard, IPAddress
from ignition._http.wire import WirePool
from ignition.fetch import Tuning, fetch_file
from ignition.fetch.progress import NoProgress
from ignition.records import FetchRequest
from ignition.settings import Settings
from support import FAST_RETRY

API_HOST = ipaddress.ip_address("127.0.0.1")


def api_host_is_public(address: IPAddress) -> bool:
    """127.0.0.1 (the fake APIs) plays a public host; everything else is judged as usual."""
    return address == API_HOST or is_public_address(address)


def status_of(url: str, *, public_only: bool = False, **options: object) -> int:
    async def go() -> int:
        async with (
            HttpClient(retry=FAST_RETRY, **options) as client,  # type: ignore[arg-type]
            client.get(url, public_only=public_only) as response,
        ):
            return response.status

    return asyncio.run(go())


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1",
        "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fc00::1", "fd12::1", "fe80::1",
        "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe",
        "2002:7f00:1::", "::127.0.0.1",
    ],
)  # fmt: skip
def test_non_public_addresses_in_every_form_are_not_public(address: str) -> None:
    assert not is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_public(address: str) -> None:
    assert is_public_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_a_public_only_request_to_loopback_is_refused_before_connecting(
    fakes: Fakes, host: str
) -> None:
    url = fakes.storage.put("k", model_bytes("k")).replace("127.0.0.2", host)
    if host == "localhost":  # resolved by the resolver, not read from the text
        url = f"{fakes.civitai.url.replace('127.0.0.1', 'localhost')}/api/download/models/1"

    with pytest.raises(PrivateAddressError) as refused:
        status_of(url, public_only=True)

    assert "not public" in refused.value.message
    assert "IGNITION_ALLOW_PRIVATE_URLS" in refused.value.hint
    assert fakes.storage.counters.requests == {}
    assert fakes.civitai.counters.requests == {}


def test_allow_private_lets_a_public_only_request_reach_loopback(fakes: Fakes) -> None:
    fakes.civitai.add(1)
    url = f"{fakes.civitai.url.replace('127.0.0.1', 'localhost')}/api/download/models/1"

    assert status_of(url, public_only=True, allow_private=True) == 200


def test_a_redirect_from_a_public_host_to_a_private_one_is_refused(fakes: Fakes) -> None:
    fakes.civitai.add(1)  # answers with a redirect to the store on 127.0.0.2

    with pytest.raises(PrivateAddressError) as refused:
        status_of(f"{fakes.civitai.url}/api/download/models/1", is_public=api_host_is_public)

    assert "redirected from" in refused.value.message
    assert "127.0.0.2" in refused.value.message
    assert fakes.civitai.counters.requests["/api/download/models/1"] == 1
    assert fakes.storage.counters.requests == {}  # never reached


def test_a_private_endpoint_may_redirect_within_its_network(fakes: Fakes) -> None:
    fakes.civitai.add(1)  # 127.0.0.1 → 127.0.0.2, both private: a mirror on the LAN

    assert status_of(f"{fakes.civitai.url}/api/download/models/1") == 200


def test_allow_private_lets_a_public_host_redirect_anywhere(fakes: Fakes) -> None:
    fakes.civitai.add(1)
    url = f"{fakes.civitai.url}/api/download/models/1"

    assert status_of(url, is_public=api_host_is_public, allow_private=True) == 200


def test_the_setting_reads_ignition_allow_private_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().allow_private_urls is False
    monkeypatch.setenv("IGNITION_ALLOW_PRIVATE_URLS", "1")
    assert Settings().allow_private_urls is True


def _download(fakes: Fakes, tmp_path: Path) -> FetchRequest:
    data = noise(1 << 20)
    digest = hashlib.sha256(data).hexdigest()
    fakes.civitai.add(1, files=[CivitaiFile(10, "m.safetensors", data)])
    return FetchRequest(
        url=f"{fakes.civitai.url}/api/download/models/1",
        staging_path=tmp_path / "staging" / "m.safetensors",
        expected_size=len(data),
        expected_sha256=digest,
        identity=f"sha256:{digest}",
        label="m.safetensors",
    )


async def test_a_download_redirected_to_a_private_address_fails_cleanly(
    fakes: Fakes, tmp_path: Path
) -> None:
    request = _download(fakes, tmp_path)

    async with HttpClient(retry=FAST_RETRY, is_public=api_host_is_public) as client:
        with pytest.raises(PrivateAddressError):
            await fetch_file(client, request, NoProgress(), tuning=Tuning())

    assert fakes.storage.counters.requests == {}
    assert not list((tmp_path / "staging").glob("*"))  # nothing partial left


class Rebinding:
    """A classifier whose verdict on one address changes, as a DNS answer can between lookups."""

    def __init__(self, address: str) -> None:
        self.address = ipaddress.ip_address(address)
        self.public = True

    def __call__(self, address: IPAddress) -> bool:
        if address == self.address:
            return self.public
        return api_host_is_public(address)


def test_a_host_reached_as_public_stays_checked_when_it_turns_private(fakes: Fakes) -> None:
    fakes.civitai.add(1)
    rebinding = Rebinding("127.0.0.2")

    async def go() -> tuple[int, type[BaseException] | None]:
        async with HttpClient(retry=FAST_RETRY, is_public=rebinding) as client:
            async with client.get(f"{fakes.civitai.url}/api/download/models/1") as response:
                status, storage_url = response.status, str(response.url)
            rebinding.public = False  # the storage name now resolves to a private address
            try:
                async with client.get(storage_url):  # hop 0, but to a host pinned public
                    return status, None
            except PrivateAddressError as error:
                return status, type(error)

    assert asyncio.run(go()) == (200, PrivateAddressError)
    assert fakes.storage.counters.requests.total() == 1


async def test_the_engines_own_connections_apply_the_same_rule(fakes: Fakes) -> None:
    never_public: Callable[[IPAddress], bool] = lambda _: False  # noqa: E731
    guard = AddressGuard(is_public=never_public)
    guard.pin("127.0.0.2")  # reached as public earlier in the run
    pool = WirePool(connect_timeout_s=5, read_timeout_s=5, guard=guard)
    url = fakes.storage.put("k", b"x" * 1024)

    with pytest.raises(PrivateAddressError):
        await pool.connect(url, 4096)

    assert fakes.storage.connections == set()
    allowed = WirePool(
        connect_timeout_s=5,
        read_timeout_s=5,
        guard=AddressGuard(allow_private=True, is_public=never_public),
    )
    (await allowed.connect(url, 4096)).close()
