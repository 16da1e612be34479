"""The only importer of the HTTP library: client factory, per-service auth, redirects, redaction.

Tokens are attached in exactly one place (`HttpClient.auth_headers`) and only when a request's
URL lies under the endpoint the token was configured with: same scheme (never over http when
the endpoint is https), host, port and path prefix. When two services share one origin (a mirror
serving both CivitAI and Hugging Face), the service a request is made for (`acting_for`) picks
the token. Redirects are followed by hand so that every hop is re-checked: CivitAI's presigned
storage host answers 400 when an Authorization header reaches it, and a token must never leak
to a CDN.
"""

from __future__ import annotations

import asyncio
import functools
import re
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from time import time
from types import TracebackType
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import aiohttp

from ignition import __version__, bounded_json

# A plain, non-browser User-Agent: CivitAI's WAF blocks urllib's default, and a browser-like UA
# makes CivitAI answer "login required" with a redirect to an HTML page instead of a 401.
USER_AGENT = f"ignition/{__version__} (ComfyUI provisioner)"

# What a caller may hold without importing the HTTP library itself.
Response = aiohttp.ClientResponse
WebSocket = aiohttp.ClientWebSocketResponse
WebSocketMessageType = aiohttp.WSMsgType
FormData = aiohttp.FormData

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Worth asking again: rate limits and server-side hiccups. Every other 4xx is the user's to fix
# (login, licence, wrong id) and retrying only delays the message.
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_MAX_REDIRECTS = 10
# Query keys safe to show in logs; everything else (token, X-Amz-Signature, Expires …) is dropped.
_SHOWABLE_QUERY_KEYS = frozenset({"modelVersionId", "type", "format", "size", "fp", "fileId"})


# Failures of the network itself (refused, reset, timed out, body cut short), after retries.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, TimeoutError)
_URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>]+")


def describe_network_error(error: BaseException) -> str:
    """A network failure as one line, with any URL in it redacted."""
    text = _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), str(error))
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def is_certificate_error(error: BaseException) -> bool:
    """The server's TLS certificate was refused: permanent, not worth another try."""
    refused = (aiohttp.ClientConnectorCertificateError, ssl.SSLCertVerificationError)
    return isinstance(error, refused)


# Every token an HttpClient was given, so that server text echoing one (an error page that
# repeats the request's headers) is masked before it becomes a message.
_KNOWN_SECRETS: set[str] = set()
_BEARER_IN_TEXT = re.compile(r"(?i)(bearer\s+)[^\s'\"<>,;]+")
_MASK = "***"
# The service the current task makes requests for; inherited by the tasks it starts.
_SERVICE: ContextVar[str | None] = ContextVar("ignition_http_service", default=None)


def mask_secrets(text: str, extra: Sequence[str] = ()) -> str:
    """`text` with every known token, every one of `extra`, and anything after `Bearer `
    replaced by `***`: for server text and exception text on their way into a message."""
    for secret in sorted({*_KNOWN_SECRETS, *extra}, key=len, reverse=True):
        if len(secret) >= 6:  # no real token is shorter; masking "ab" would garble every message
            text = text.replace(secret, _MASK)
    return _BEARER_IN_TEXT.sub(rf"\g<1>{_MASK}", text)


@contextmanager
def acting_for(service: str | None) -> Iterator[None]:
    """Requests made inside (and in tasks started inside) carry `service`'s token only."""
    reset = _SERVICE.set(service)
    try:
        yield
    finally:
        _SERVICE.reset(reset)


@dataclass(frozen=True)
class ServiceToken:
    """A bearer token, the service it belongs to and the endpoint it was configured with."""

    service: str  # "civitai", "huggingface", "runpod"
    endpoint: str  # e.g. "https://civitai.com", or "https://mirror.example/hf"
    token: str | None

    def path_covering(self, url: str) -> str | None:
        """The endpoint's path when `url` lies under this endpoint, else None. The scheme must
        match exactly: an https endpoint's token never travels over http."""
        base, target = urlsplit(self.endpoint), urlsplit(url)
        if (base.scheme.lower(), base.netloc.lower()) != (
            target.scheme.lower(),
            target.netloc.lower(),
        ):
            return None
        prefix = base.path.rstrip("/")
        if target.path != prefix and not target.path.startswith(prefix + "/"):
            return None
        return prefix


def host_of(url: str) -> str:
    """`host[:port]`, lower-cased: the unit tokens are scoped to."""
    return urlsplit(url).netloc.lower()


def redact_url(url: str) -> str:
    """The URL without credentials or signatures, fit for logs, errors and `--json` output."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = [(k, v) for k, v in parse_qsl(parts.query) if k in _SHOWABLE_QUERY_KEYS]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query), ""))


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context of a run, for aiohttp and the engine's own connections alike: the
    system's CAs, or SSL_CERT_FILE / SSL_CERT_DIR when set (read when first used)."""
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])
    return context


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff.

    CivitAI answers "too many downloads" with a 429 that usually has no Retry-After: back off
    1 s → 2 s → … → 30 s. A Retry-After is honoured, unless it asks for longer than
    `max_retry_after_s` (then the 429 is handed to the caller, who reports it).
    """

    attempts: int = 6
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    max_retry_after_s: float = 120.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def delay_s(self, attempt: int, retry_after: str | None) -> float | None:
        """Seconds to wait before attempt `attempt + 1`, or None when it is time to give up."""
        if attempt + 1 >= self.attempts:
            return None
        wait = _parse_retry_after(retry_after)
        if wait is None:
            return min(self.first_delay_s * 2.0**attempt, self.max_delay_s)
        return wait if wait <= self.max_retry_after_s else None


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time())
    except (TypeError, ValueError):
        return None


class HttpError(Exception):
    """A response the caller must interpret (status, headers and a short body excerpt).

    Server text (body and header values) is masked here, once, before any caller turns it into
    a message: a server that echoes the request's Authorization never gets the token shown.
    `secrets` are more values to mask (the token that request carried).
    """

    def __init__(
        self,
        status: int,
        url: str,
        headers: Mapping[str, str],
        body: str,
        *,
        secrets: Sequence[str] = (),
    ) -> None:
        super().__init__(f"HTTP {status} from {redact_url(url)}")
        self.status = status
        self.url = url
        self.headers = {name: mask_secrets(value, secrets) for name, value in headers.items()}
        self.body = mask_secrets(body, secrets)


class HttpClient:
    """One aiohttp session for a run, with tokens scoped to their services' endpoints.

    `tokens`: `ServiceToken`s, or a mapping of API endpoint (e.g. "https://civitai.com") to its
    bearer token for a client that talks to one service.
    """

    def __init__(
        self,
        tokens: Mapping[str, str | None] | Sequence[ServiceToken] | None = None,
        *,
        connections: int = 16,
        connect_timeout_s: float = 30.0,
        read_timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        if isinstance(tokens, Mapping):
            tokens = [ServiceToken(endpoint, endpoint, token) for endpoint, token in tokens.items()]
        self._tokens = [entry for entry in tokens or () if entry.token]
        _KNOWN_SECRETS.update(entry.token for entry in self._tokens if entry.token)
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._session: aiohttp.ClientSession | None = None
        self._on_close: list[Callable[[], None]] = []
        self.retry = retry or RetryPolicy()

    async def __aenter__(self) -> HttpClient:
        connector = aiohttp.TCPConnector(limit=self._connections * 2, limit_per_host=0)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={"User-Agent": USER_AGENT},
            # Model bytes must arrive exactly as stored: sha256 is computed over them.
            auto_decompress=False,
            trust_env=True,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        while self._on_close:
            self._on_close.pop()()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def call_on_close(self, callback: Callable[[], None]) -> None:
        """Run `callback` when the client closes (the engine's own idle connections)."""
        self._on_close.append(callback)

    @property
    def connect_timeout_s(self) -> float:
        return float(self._timeout.sock_connect or 0)

    @property
    def read_timeout_s(self) -> float:
        """No byte for this long on a connection is a stall (the engine retries the range)."""
        return float(self._timeout.sock_read or 0)

    @property
    def connections(self) -> int:
        """How many transfers may stream at once (IGNITION_CONNECTIONS): the fetch budget."""
        return self._connections

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("HttpClient used outside `async with`")
        return self._session

    def auth_headers(self, url: str) -> dict[str, str]:
        """The Authorization header for `url`, or nothing when no configured endpoint covers it.

        Of the endpoints covering `url`, those of the service named by `acting_for` (when one
        is), and of those the longest path prefix; two different tokens still in the running
        means nobody can tell whose request this is, and none is sent.
        """
        service = _SERVICE.get()
        covering = [
            (prefix, entry)
            for entry in self._tokens
            if (prefix := entry.path_covering(url)) is not None
            and (service is None or entry.service == service)
        ]
        if not covering:
            return {}
        longest = max(len(prefix) for prefix, _ in covering)
        tokens = {entry.token for prefix, entry in covering if len(prefix) == longest}
        if len(tokens) != 1:
            return {}
        return {"Authorization": f"Bearer {tokens.pop()}"}

    @asynccontextmanager
    async def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
        stop_at_other_host: bool = False,
        retry: RetryPolicy | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET (or HEAD) `url`: `request` without a body."""
        async with self.request(
            method, url, headers=headers, stop_at_other_host=stop_at_other_host, retry=retry
        ) as response:
            yield response

    @asynccontextmanager
    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: object = None,
        data: bytes | aiohttp.FormData | None = None,
        stop_at_other_host: bool = False,
        retry: RetryPolicy | None = None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send `method` to `url`, following redirects hop by hop with auth re-scoped at every hop.

        429 and 5xx answers and connection failures are retried from `url` (a fresh presigned
        link each time) under `self.retry`. The final response is yielded whatever its status;
        `response.url` is where it came from. With `stop_at_other_host`, a redirect to another
        host is yielded instead of followed (HF puts the file's sha256 on that redirect).
        `retry` overrides the client's policy (the download engine retries ranges itself; a
        POST that must not run twice passes `RetryPolicy(attempts=1)`). A body (`json` or
        `data`) is sent on the first hop only: a redirect of a POST is handed to the caller.
        """
        policy = retry or self.retry
        attempt = 0
        while True:
            try:
                response = await self._follow(
                    url, headers, method, stop_at_other_host, json=json, data=data
                )
            except aiohttp.ClientConnectorCertificateError:
                raise  # asking again gets the same certificate
            except (TimeoutError, aiohttp.ClientConnectionError):  # nothing arrived: ask again
                delay = policy.delay_s(attempt, None)
                if delay is None:
                    raise
                await policy.sleep(delay)
                attempt += 1
                continue
            if response.status in _RETRY_STATUSES:
                delay = policy.delay_s(attempt, response.headers.get("Retry-After"))
                if delay is not None:
                    response.release()
                    await policy.sleep(delay)
                    attempt += 1
                    continue
            try:
                yield response
            finally:
                response.release()
            return

    @asynccontextmanager
    async def websocket(
        self, url: str, *, heartbeat_s: float | None = 30.0
    ) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        """A WebSocket to `url` (ComfyUI's /ws), with the host's token if it owns one."""
        async with self.session.ws_connect(
            url,
            headers=self.auth_headers(url),
            heartbeat=heartbeat_s,
            max_msg_size=64 * 1024 * 1024,
            ssl=tls_context() if url.startswith("wss:") else True,
        ) as socket:
            yield socket

    async def _follow(
        self,
        url: str,
        headers: Mapping[str, str] | None,
        method: str,
        stop_at_other_host: bool,
        *,
        json: object = None,
        data: bytes | aiohttp.FormData | None = None,
    ) -> aiohttp.ClientResponse:
        current = url
        has_body = json is not None or data is not None
        for hop in range(_MAX_REDIRECTS + 1):
            request_headers = {"Accept-Encoding": "identity", **(headers or {})}
            request_headers.update(self.auth_headers(current))
            response = await self.session.request(
                method,
                current,
                headers=request_headers,
                allow_redirects=False,
                json=json if hop == 0 else None,
                data=data if hop == 0 else None,
                # Made on first use: a run over plain http (the tests) never loads the CAs.
                ssl=tls_context() if current.startswith("https:") else True,
            )
            location = response.headers.get("Location")
            if response.status not in _REDIRECT_STATUSES or not location or has_body:
                return response
            # HF answers small files with a relative Location: resolve against this hop.
            target = urljoin(current, location)
            if stop_at_other_host and host_of(target) != host_of(current):
                return response
            response.release()
            current = target
        raise HttpError(310, current, {}, f"more than {_MAX_REDIRECTS} redirects")

    async def get_json(self, url: str) -> object:
        """GET a JSON API resource; any non-2xx answer raises HttpError for the caller to map."""
        async for page in self.get_json_pages(url):
            return page
        raise AssertionError("unreachable: get_json_pages yields at least once")

    async def get_json_pages(self, url: str) -> AsyncIterator[object]:
        """GET a JSON resource and its following pages (`Link: <…>; rel="next"`, as HF pages)."""
        next_url: str | None = url
        while next_url is not None:
            async with self.get(next_url, headers={"Accept": "application/json"}) as response:
                await raise_for_status(response)
                data = await bounded_json.read_json(response, what=redact_url(next_url))
                link = response.links.get("next")
                next_url = urljoin(str(response.url), str(link["url"])) if link else None
            yield data


async def raise_for_status(response: aiohttp.ClientResponse) -> None:
    """HttpError (status, headers, the body's first 4 KiB) for any answer that is not 2xx."""
    if response.status >= 300:
        body = (await response.content.read(4096)).decode("utf-8", "replace")
        sent = response.request_info.headers.get("Authorization", "")
        secrets = [sent, sent.partition(" ")[2]] if sent else []
        raise HttpError(response.status, str(response.url), response.headers, body, secrets=secrets)
