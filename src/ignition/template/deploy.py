"""Create or update the template in the user's RunPod account through the REST v2 API.

    1. GET   /v2/templates        look for a template of ours with the same name
    2. PATCH /v2/templates/{id}   if there is one: v2 has no upsert, and a second POST of the
       POST  /v2/templates        same name is refused; otherwise create it

Every call goes through the shared HTTP client (`ignition._http`), carries
`Authorization: Bearer <RUNPOD_API_KEY>` for the API's host only, and waits out 429 under the
client's bounded RetryPolicy (429 only, see `_RunPodApi`); every other failure becomes a
DeployError saying what to do. Redirects are not followed (the key stays with the API host),
and the key is scrubbed from anything the server says back before it reaches a message.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from pydantic import SecretStr

from ignition._http import (
    NETWORK_ERRORS,
    HttpClient,
    Proxies,
    RetryNotice,
    RetryPolicy,
    describe_network_error,
    redact_url,
)
from ignition.errors import (
    ApiKeyRejectedError,
    ConfigError,
    DeployError,
    RunPodUnreachableError,
    TemplateRejectedError,
)
from ignition.template.build import render_json

CONSOLE_URL = "https://console.runpod.io"
TEMPLATES_PATH = "/v2/templates"
MASKED_KEY = "********"

_LOOPBACK_HOSTS = {"127.0.0.1", "127.0.0.2", "::1", "localhost"}
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeployedTemplate:
    template_id: str
    name: str
    created: bool  # False: an existing template with this name was updated in place

    @property
    def console_url(self) -> str:
        """Opens RunPod's deploy page with this template selected."""
        return f"{CONSOLE_URL}/deploy?template={quote(self.template_id, safe='')}"


def describe_request(body: dict[str, Any], api_url: str) -> str:
    """What `--deploy` would send, for `--dry-run`; the key is never an input, so never shown."""
    return (
        f"POST {api_url}{TEMPLATES_PATH}\n"
        f"Authorization: Bearer {MASKED_KEY}\n"
        "Content-Type: application/json\n"
        "\n"
        f"{render_json(body)}"
        "\n"
        f"If a template named {body['name']!r} already exists, the same body goes to\n"
        f"PATCH {api_url}{TEMPLATES_PATH}/<its id> instead.\n"
    )


async def deploy_template(
    body: dict[str, Any],
    *,
    api_url: str,
    api_key: SecretStr,
    retry: RetryPolicy | None = None,
    timeout_s: float = 30.0,
    proxies: Proxies | None = None,
) -> DeployedTemplate:
    """Create the template, or update the one that already carries its name."""
    key = _usable_key(api_key)
    _check_transport(api_url)
    # The client attaches the key only to requests for the API's own host.
    tokens = {api_url: key}
    async with HttpClient(
        tokens,
        connections=1,
        connect_timeout_s=timeout_s,
        read_timeout_s=timeout_s,
        retry=retry,
        proxies=proxies,
    ) as client:
        api = _RunPodApi(client, api_url, key)
        existing = await api.find_template_id(body["name"])
        if existing is None:
            answer = await api.call("POST", TEMPLATES_PATH, body)
        else:
            answer = await api.call("PATCH", f"{TEMPLATES_PATH}/{quote(existing, safe='')}", body)
    template_id = answer.get("id") if isinstance(answer, dict) else None
    if not isinstance(template_id, str) or not template_id:
        raise DeployError(
            "RunPod accepted the template but its answer carries no template id",
            hint="look for the template under Templates in the RunPod console",
        )
    return DeployedTemplate(template_id, body["name"], created=existing is None)


def _usable_key(api_key: SecretStr) -> str:
    value = api_key.get_secret_value()
    # A newline or space would break (or inject into) the header, and the HTTP library's error
    # for that quotes the header value: refuse it here, without echoing it.
    if not value or not value.isascii() or not value.isprintable() or " " in value:
        raise ConfigError(
            "RUNPOD_API_KEY contains spaces or control characters",
            hint="copy the key again from Settings → API Keys in the RunPod console",
        )
    return value


def _check_transport(api_url: str) -> None:
    parts = urlsplit(api_url)
    if parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS):
        return
    raise ConfigError(
        f"RUNPOD_API_URL {redact_url(api_url)!r} would send the API key without TLS",
        hint="use an https:// URL (plain http is accepted only for 127.0.0.1/localhost)",
    )


class _RunPodApi:
    def __init__(self, client: HttpClient, api_url: str, key: str) -> None:
        self._client = client
        self._api_url = api_url
        self._key = key
        # Only 429 is retried: RunPod says it did nothing. After a 5xx a POST may have created
        # the template, and a blind second POST would then fail on the duplicate name. No
        # answer at all is reported at once: running the command again is the retry.
        self._retry = dataclasses.replace(
            client.retry,
            statuses=frozenset({429}),
            connection_failures=False,
            on_retry=self._rate_limited,
        )
        self._waits = 0

    def _rate_limited(self, notice: RetryNotice) -> None:
        self._waits += 1
        _log.warning("RunPod is rate limiting; retrying in %.1f s", notice.delay_s)

    async def find_template_id(self, name: str) -> str | None:
        answer = await self.call("GET", TEMPLATES_PATH)
        # The schema says {"templates": [...]}; accept a bare list too, fields drift.
        listed = answer.get("templates") if isinstance(answer, dict) else answer
        for template in listed if isinstance(listed, list) else []:
            if isinstance(template, dict) and template.get("name") == name:
                found = template.get("id")
                if isinstance(found, str) and found:
                    return found
        return None

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self._api_url}{path}"
        self._waits = 0
        status, text = await self._send(method, url, body)
        if status == 429:
            raise DeployError(
                f"RunPod kept answering 429 Too Many Requests ({self._waits + 1} attempts)",
                hint="wait a minute, then run `ignition template --deploy` again",
            )
        if status >= 300:
            raise self._error(method, url, status, text)
        return _json_or_none(text)

    async def _send(self, method: str, url: str, body: dict[str, Any] | None) -> tuple[int, str]:
        """One call (429s waited out) → (status, body text); no answer → RunPodUnreachable."""
        try:
            async with self._client.request(
                method,
                url,
                json=body,
                headers={"Accept": "application/json"},
                retry=self._retry,
                follow_redirects=False,
            ) as response:
                return response.status, await response.text()
        except NETWORK_ERRORS as error:
            # `from None`: the HTTP library's exceptions carry request_info, headers included.
            reason = self._scrub(describe_network_error(error))
            raise RunPodUnreachableError(
                f"cannot reach RunPod at {redact_url(self._api_url)}: {reason}"
            ) from None

    def _error(self, method: str, url: str, status: int, text: str) -> DeployError:
        said = self._scrub(_server_message(text))
        if status in (401, 403):
            return ApiKeyRejectedError(f"RunPod refused the API key ({status}: {said})")
        if status in (400, 422):
            return TemplateRejectedError(f"RunPod rejected the template ({status}): {said}")
        if 300 <= status < 400:
            return DeployError(
                f"{method} {redact_url(url)} was redirected ({status}); "
                "the key is not sent on redirects",
                hint="set RUNPOD_API_URL to the API's final address",
            )
        if status >= 500:
            return DeployError(
                f"RunPod's API failed ({status}): {said}",
                hint="RunPod had a server error; try again in a few minutes",
            )
        return DeployError(
            f"{method} {redact_url(url)} answered {status}: {said}",
            hint="check RUNPOD_API_URL points at RunPod's REST API (https://api.runpod.io)",
        )

    def _scrub(self, text: str) -> str:
        return text.replace(self._key, MASKED_KEY)


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except json.JSONDecodeError:
        return None


def _server_message(text: str) -> str:
    """The `detail` of RunPod's problem+json answer, with its per-field `errors` appended."""
    payload = _json_or_none(text)
    if not isinstance(payload, dict):
        return text.strip()[:500] or "no details given"
    detail = str(payload.get("detail") or payload.get("title") or payload.get("error") or "")
    errors = payload.get("errors")
    if isinstance(errors, list) and errors:
        detail = f"{detail} {'; '.join(str(e) for e in errors)}".strip()
    return detail or "no details given"
