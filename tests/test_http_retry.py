"""The one retry policy: statuses, Retry-After in both forms, backoff, and the on_retry hook
that lets a run with no network say so at once (instead of 31 s of silence)."""

import asyncio
import io
import ssl
import time
from email.utils import formatdate

import aiohttp
from aiohttp.client_reqrep import ConnectionKey

from fakes.services import Fakes
from ignition._http import (
    RETRYABLE_STATUSES,
    HttpClient,
    RetryNotice,
    RetryPolicy,
    describe_network_error,
    parse_retry_after,
)
from ignition.pipeline import provision
from ignition.progress import RunDisplay
from support import free_port


class Recorder:
    """A policy's sleep and on_retry: what was waited, what was said, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    async def sleep(self, seconds: float) -> None:
        self.events.append(("sleep", seconds))

    def on_retry(self, notice: RetryNotice) -> None:
        self.events.append(("notice", notice))

    def policy(self, **options: float) -> RetryPolicy:
        return RetryPolicy(sleep=self.sleep, on_retry=self.on_retry, **options)  # type: ignore[arg-type]


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    in_a_minute = parse_retry_after(formatdate(time.time() + 60, usegmt=True))
    assert in_a_minute is not None and 55 <= in_a_minute <= 60
    assert parse_retry_after(formatdate(time.time() - 60, usegmt=True)) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_doubles_to_the_cap_and_gives_up_after_the_attempts() -> None:
    policy = RetryPolicy(attempts=4, first_delay_s=1, max_delay_s=3)
    assert [policy.delay_s(n, None) for n in range(4)] == [1, 2, 3, None]
    assert policy.delay_s(0, "200") is None  # longer than max_retry_after_s: the caller reports
    assert policy.remaining_s(0) == 6


def test_the_retried_statuses_are_one_set() -> None:
    assert {408, 425, 429, 500, 502, 503, 504} == RETRYABLE_STATUSES
    assert not RetryPolicy().retryable(404) and not RetryPolicy().retryable(501)
    assert RetryPolicy(statuses=frozenset({429})).retryable(429)


def test_a_408_from_storage_is_retried_by_the_client(fakes: Fakes) -> None:
    url = fakes.storage.put("k", b"x" * 100)
    fakes.storage.faults.statuses = [408]
    recorder = Recorder()

    async def go() -> int:
        async with (
            HttpClient(retry=recorder.policy()) as client,
            client.get(url) as response,
        ):
            return response.status

    assert asyncio.run(go()) == 200
    (kind, notice), sleep = recorder.events
    assert kind == "notice" and isinstance(notice, RetryNotice)
    assert notice.reason == "HTTP 408" and notice.host == "127.0.0.2"
    assert sleep == ("sleep", 1.0)


def test_a_refused_connection_is_announced_before_the_first_wait() -> None:
    port = free_port()
    recorder = Recorder()

    async def go() -> None:
        async with HttpClient(retry=recorder.policy(attempts=3)) as client:
            try:
                async with client.get(f"http://127.0.0.1:{port}/api/v1/models/1"):
                    pass
            except aiohttp.ClientError:
                return
        raise AssertionError("the connection should have been refused")

    asyncio.run(go())
    kinds = [kind for kind, _ in recorder.events]
    assert kinds == ["notice", "sleep", "notice", "sleep"]
    notice = recorder.events[0][1]
    assert isinstance(notice, RetryNotice)
    assert notice.what == f"GET 127.0.0.1:{port}/api/v1/models/1"
    assert notice.reason == f"cannot connect to 127.0.0.1:{port} (connection refused)"
    assert notice.keeps_trying_s == 3.0  # 1 s + 2 s


def test_network_errors_read_as_one_line_without_object_reprs() -> None:
    key = ConnectionKey(
        "civitai.com", 443, True, ssl.create_default_context(), None, None, None, None
    )
    dns = aiohttp.ClientConnectorDNSError(key, OSError(-2, "Name or service not known"))
    assert "object at 0x" in str(dns)  # what aiohttp says, and users saw

    said = describe_network_error(dns)
    assert said == "cannot resolve civitai.com (DNS lookup failed: is the network up?)"
    refused = aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))
    assert (
        describe_network_error(refused) == "cannot connect to civitai.com:443 (connection refused)"
    )


def test_a_download_with_no_network_says_what_it_retries_at_once(fakes: Fakes) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    settings = fakes.settings(huggingface_models="org/repo/model.safetensors", hf_endpoint=dead)
    stream = io.StringIO()
    said_before_waiting: list[str] = []

    async def sleep(_: float) -> None:
        said_before_waiting.append(stream.getvalue())

    display = RunDisplay(None, stream=stream, tty=False)
    policy = RetryPolicy(attempts=3, sleep=sleep)
    report = asyncio.run(provision(settings, display=display, retry=policy))

    # Before the first wait: the plan line, then exactly one line about the retry.
    first = [line for line in said_before_waiting[0].splitlines() if "retrying" in line]
    assert len(first) == 1
    assert f"cannot connect to {dead.removeprefix('http://')}" in first[0]
    assert "(connection refused) — retrying HEAD 127.0.0.1" in first[0]
    assert "for up to 3 s more" in first[0]
    (outcome,) = report.outcomes
    assert outcome.status == "failed"
    said = f"{outcome.error} {outcome.hint}"
    assert "object at 0x" not in said
    assert "CIVITAI_ENDPOINT" not in said
    assert f"HF_ENDPOINT ({dead})" in said


async def test_a_request_whose_answer_was_lost_is_sent_again_only_if_idempotent() -> None:
    requests: list[bytes] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))  # read the request, say nothing
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/run"
    recorder = Recorder()
    async with server, HttpClient(retry=recorder.policy(attempts=2)) as client:
        for method in ("POST", "GET"):
            try:
                async with client.request(method, url, json={} if method == "POST" else None):
                    pass
            except aiohttp.ServerDisconnectedError:
                pass

    methods = [r.split(b" ", 1)[0] for r in requests]
    assert methods.count(b"POST") == 1
    assert methods.count(b"GET") > 1  # (aiohttp, too, asks again once on a fresh connection)
    assert [kind for kind, _ in recorder.events] == ["notice", "sleep"]  # the GET's retry
