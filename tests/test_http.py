"""The HTTP seam: per-host tokens, redirects to another host, retries, redaction."""

import asyncio
from typing import Any

import pytest

from fakes.content import model_bytes
from fakes.services import Fakes
from ignition._http import HttpClient, RetryPolicy, redact_url


def get(url: str, headers: dict[str, str] | None = None, **options: Any) -> tuple[int, str]:
    """GET through a fresh HttpClient; (final status, final URL)."""

    async def go() -> tuple[int, str]:
        async with HttpClient(**options) as client, client.get(url, headers=headers) as response:
            return response.status, str(response.url)

    return asyncio.run(go())


def recording_policy(**options: float) -> tuple[RetryPolicy, list[float]]:
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    return RetryPolicy(sleep=sleep, **options), waits  # type: ignore[arg-type]


def test_loopback_127_0_0_2_is_a_distinct_host(fakes: Fakes) -> None:
    assert fakes.storage.server.url.startswith("http://127.0.0.2:")


def test_the_token_is_dropped_on_the_redirect_to_storage(fakes: Fakes) -> None:
    fakes.civitai.add(1, login_required=True)
    token = fakes.civitai.token

    status, final_url = get(
        f"{fakes.civitai.url}/api/download/models/1", tokens={fakes.civitai.url: token}
    )
    assert status == 200
    assert final_url.startswith("http://127.0.0.2:")
    assert fakes.civitai.counters.authorization_seen == ["/api/download/models/1"]
    assert fakes.storage.counters.authorization_seen == []


def test_a_token_never_goes_to_a_host_it_does_not_belong_to(fakes: Fakes) -> None:
    url = fakes.storage.put("k", model_bytes("k"))

    tokens = {fakes.civitai.url: "t0ken", fakes.hf.url: "hf_t0ken"}
    assert HttpClient(tokens).auth_headers(url) == {}
    assert get(url, tokens=tokens)[0] == 200
    assert fakes.storage.counters.authorization_seen == []


def test_storage_refuses_an_authorization_header_like_r2_does(fakes: Fakes) -> None:
    url = fakes.storage.put("k", b"x")

    assert get(url, headers={"Authorization": "Bearer leak"})[0] == 400


def test_429_without_retry_after_backs_off_exponentially_to_30s(fakes: Fakes) -> None:
    fakes.civitai.add(1)
    fakes.civitai.throttle.remaining["/api/download/models/1"] = 7
    policy, waits = recording_policy(attempts=8)

    assert get(f"{fakes.civitai.url}/api/download/models/1", retry=policy)[0] == 200
    assert waits == [1, 2, 4, 8, 16, 30, 30]


def test_retry_after_is_honoured(fakes: Fakes) -> None:
    fakes.civitai.add(1)
    fakes.civitai.throttle.remaining["/api/download/models/1"] = 1
    fakes.civitai.throttle.retry_after = "7"
    policy, waits = recording_policy()

    assert get(f"{fakes.civitai.url}/api/download/models/1", retry=policy)[0] == 200
    assert waits == [7.0]


@pytest.mark.parametrize("status_path", ["/api/download/models/404", "/api/v1/model-versions/x"])
def test_other_4xx_are_never_retried(fakes: Fakes, status_path: str) -> None:
    policy, waits = recording_policy()

    assert get(f"{fakes.civitai.url}{status_path}", retry=policy)[0] in (400, 404)
    assert waits == []
    assert fakes.civitai.counters.requests[status_path] == 1


def test_redact_url_removes_tokens_and_signatures() -> None:
    url = (
        "https://civitai.com/api/download/models/1?fileId=2&token=SECRET"
        "&X-Amz-Signature=SIG&X-Amz-Credential=CRED"
    )
    redacted = redact_url(url)
    assert redacted == "https://civitai.com/api/download/models/1?fileId=2"
    assert redact_url("https://user:pw@host/x?token=a") == "https://host/x"
