"""The HTTP client of a run: sessions, per-host auth, redirects, the address guard, redaction.

Tokens are attached in exactly one place (`HttpClient.auth_headers`) and only when a request's
host is the host the token belongs to. Redirects are followed by hand so that every hop is
re-checked: CivitAI's presigned storage host answers 400 when an Authorization header reaches
it, a token must never leak to a CDN, and a hop may not lead to a private address
(`addresses.py`).
"""

from __future__ import annotations

import functools
import os
import re
import ssl
import urllib.request
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import aiohttp

from ignition import __version__
from ignition._http.addresses import AddressGuard, CheckingResolver, Classifier, is_public_address
from ignition._http.retry import RetryPolicy
from ignition.errors import PrivateAddressError

# A plain, non-browser User-Agent: CivitAI's WAF blocks urllib's default, and a browser-like UA
# makes CivitAI answer "login required" with a redirect to an HTML page instead of a 401.
USER_AGENT = f"ignition/{__version__} (ComfyUI provisioner)"

# What a caller may hold without importing the HTTP library itself.
Response = aiohttp.ClientResponse
WebSocket = aiohttp.ClientWebSocketResponse
WebSocketMessageType = aiohttp.WSMsgType
FormData = aiohttp.FormData

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Asking again after a lost answer does no harm (RFC 9110 §9.2.2).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_MAX_REDIRECTS = 10
# Query keys safe to show in logs; everything else (token, X-Amz-Signature, Expires …) is dropped.
_SHOWABLE_QUERY_KEYS = frozenset({"modelVersionId", "type", "format", "size", "fp", "fileId"})


# Failures of the network itself (refused, reset, timed out, body cut short), after retries.
NETWORK_ERRORS: tuple[type[BaseException], ...] = (aiohttp.ClientError, TimeoutError)
_URL_IN_TEXT = re.compile(r"https?://[^\s'\"<>]+")
_OBJECT_REPR = re.compile(r"\S*<[^<>]* object at 0x[0-9a-f]+>")


def describe_network_error(error: BaseException) -> str:
    """A network failure as one line a user can act on: the host named, no object reprs, any
    URL redacted."""
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return f"the TLS certificate of {error.host} is not trusted ({error.certificate_error})"
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return f"cannot resolve {error.host} (DNS lookup failed: is the network up?)"
    if isinstance(error, aiohttp.ClientConnectorError):
        code = error.os_error.errno
        # asyncio's strerror is "Connect call failed ('1.2.3.4', 443)": the errno says it better.
        reason = os.strerror(code) if code and code > 0 else str(error.os_error)
        return f"cannot connect to {error.host}:{error.port} ({reason.lower()})"
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return "no answer in time"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the server closed the connection"
    if isinstance(error, aiohttp.ClientPayloadError):
        return "the answer was cut short"
    text = _OBJECT_REPR.sub("", _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), str(error)))
    text = " ".join(text.split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def is_certificate_error(error: BaseException) -> bool:
    """The server's TLS certificate was refused: permanent, not worth another try."""
    refused = (aiohttp.ClientConnectorCertificateError, ssl.SSLCertVerificationError)
    return isinstance(error, refused)


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


class HttpError(Exception):
    """A response the caller must interpret (status, headers and a short body excerpt)."""

    def __init__(self, status: int, url: str, headers: Mapping[str, str], body: str) -> None:
        super().__init__(f"HTTP {status} from {redact_url(url)}")
        self.status = status
        self.url = url
        self.headers = dict(headers)
        self.body = body


class HttpClient:
    """One aiohttp session for a run, with tokens scoped to their API hosts.

    `tokens` maps an API endpoint (e.g. "https://civitai.com") to its bearer token.
    `allow_private` (IGNITION_ALLOW_PRIVATE_URLS) lets requests and redirects reach private
    addresses; `is_public` decides what counts as public (tests stand loopback in for the
    internet with it).
    """

    def __init__(
        self,
        tokens: Mapping[str, str | None] | None = None,
        *,
        connections: int = 16,
        connect_timeout_s: float = 30.0,
        read_timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        allow_private: bool = False,
        is_public: Classifier = is_public_address,
    ) -> None:
        self._tokens = {host_of(endpoint): token for endpoint, token in (tokens or {}).items()}
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._session: aiohttp.ClientSession | None = None
        # Hops that must reach public addresses go through a session of their own, so that a
        # connection to a private address kept alive by the other can never be reused for one.
        self._public_session: aiohttp.ClientSession | None = None
        proxies = urllib.request.getproxies()
        self.guard = AddressGuard(
            allow_private=allow_private,
            is_public=is_public,
            exempt_hosts=[urlsplit(proxy).hostname or "" for proxy in proxies.values()],
        )
        self._on_close: list[Callable[[], None]] = []
        self.retry = retry or RetryPolicy()

    async def __aenter__(self) -> HttpClient:
        self._session = self._new_session(public_only=False)
        if not self.guard.allow_private:
            self._public_session = self._new_session(public_only=True)
        return self

    def _new_session(self, *, public_only: bool) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._connections * 2,
            limit_per_host=0,
            resolver=CheckingResolver(self.guard, public_only=public_only),
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={"User-Agent": USER_AGENT},
            # Model bytes must arrive exactly as stored: sha256 is computed over them.
            auto_decompress=False,
            trust_env=True,
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        while self._on_close:
            self._on_close.pop()()
        for session in (self._session, self._public_session):
            if session is not None:
                await session.close()
        self._session = self._public_session = None

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
    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("HttpClient used outside `async with`")
        return self._session

    def auth_headers(self, url: str) -> dict[str, str]:
        """The Authorization header for `url`, or nothing when the host owns no token."""
        token = self._tokens.get(host_of(url))
        return {"Authorization": f"Bearer {token}"} if token else {}

    @asynccontextmanager
    async def get(
        self,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        method: str = "GET",
        stop_at_other_host: bool = False,
        retry: RetryPolicy | None = None,
        public_only: bool = False,
        follow_redirects: bool = True,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET (or HEAD) `url`: `request` without a body."""
        async with self.request(
            method,
            url,
            headers=headers,
            stop_at_other_host=stop_at_other_host,
            retry=retry,
            public_only=public_only,
            follow_redirects=follow_redirects,
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
        public_only: bool = False,
        follow_redirects: bool = True,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """Send `method` to `url`, following redirects hop by hop with auth re-scoped at every hop.

        The policy's retryable answers (retry.py) and connection failures are retried from
        `url` (a fresh presigned link each time) under `self.retry`. The final response is
        yielded whatever its status; `response.url` is where it came from. With
        `stop_at_other_host`, a redirect to another host is yielded instead of followed (HF puts
        the file's sha256 on that redirect).
        `retry` overrides the client's policy (the download engine retries ranges itself; a
        POST that must not run twice passes `RetryPolicy(attempts=1)`). A body (`json` or
        `data`) is sent on the first hop only: a redirect of a POST is handed to the caller.
        With `public_only` (a URL someone else chose), every hop must resolve to public
        addresses; without it, only the hops after a public host must (see addresses.py). A
        refused hop raises PrivateAddressError, never retried. Without `follow_redirects`, a
        redirect is yielded as it came (a host that must keep its key: `template --deploy`).

        A request that failed after it was sent is asked again only when its method is
        idempotent: a POST whose answer was lost may have been done.
        """
        policy = retry or self.retry
        what = f"{method} {redact_url(url).partition('://')[2]}"
        attempt = 0
        while True:
            try:
                response = await self._follow(
                    url,
                    headers,
                    method,
                    stop_at_other_host,
                    public_only=public_only,
                    follow_redirects=follow_redirects,
                    json=json,
                    data=data,
                )
            except aiohttp.ClientConnectorCertificateError:
                raise  # asking again gets the same certificate
            except (TimeoutError, aiohttp.ClientConnectionError) as error:  # ask again
                unsent = isinstance(error, aiohttp.ClientConnectorError)
                delay = policy.delay_s(attempt, None) if policy.connection_failures else None
                if delay is None or not (unsent or method in _IDEMPOTENT):
                    raise
                reason = describe_network_error(error)
                policy.notify(what, urlsplit(url).hostname or "", reason, attempt, delay)
                await policy.sleep(delay)
                attempt += 1
                continue
            if policy.retryable(response.status):
                delay = policy.delay_s(attempt, response.headers.get("Retry-After"))
                if delay is not None:
                    response.release()
                    host = response.url.host or ""
                    policy.notify(what, host, f"HTTP {response.status}", attempt, delay)
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
        async with self._open_session.ws_connect(
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
        public_only: bool,
        follow_redirects: bool = True,
        json: object = None,
        data: bytes | aiohttp.FormData | None = None,
    ) -> aiohttp.ClientResponse:
        current = url
        has_body = json is not None or data is not None
        guarded = public_only
        for hop in range(_MAX_REDIRECTS + 1):
            request_headers = {"Accept-Encoding": "identity", **(headers or {})}
            request_headers.update(self.auth_headers(current))
            host = urlsplit(current).hostname or ""
            guarded = guarded or self.guard.pinned(host)
            try:
                response = await self._hop(
                    method, current, request_headers, guarded, hop, json=json, data=data
                )
            except PrivateAddressError as refused:
                came = f" (redirected from {redact_url(url)})" if hop else ""
                raise PrivateAddressError(
                    f"{redact_url(current)}{came}: {refused.message}"
                ) from None
            if guarded:
                self.guard.pin(host)
            location = response.headers.get("Location")
            redirect = response.status in _REDIRECT_STATUSES and location
            if not redirect or not follow_redirects or has_body:
                return response
            # HF answers small files with a relative Location: resolve against this hop.
            target = urljoin(current, str(location))
            if stop_at_other_host and host_of(target) != host_of(current):
                return response
            response.release()
            current = target
            # Where a public host sends us must be public too (a CDN, never the pod itself).
            guarded = guarded or self.guard.seen_public(host)
        raise HttpError(310, current, {}, f"more than {_MAX_REDIRECTS} redirects")

    async def _hop(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        guarded: bool,
        hop: int,
        *,
        json: object,
        data: bytes | aiohttp.FormData | None,
    ) -> aiohttp.ClientResponse:
        """One request, on the session whose resolver enforces what this hop must reach."""
        self.guard.admit_literal(urlsplit(url).hostname or "", public_only=guarded)
        session = self._public_session if guarded and self._public_session else self._open_session
        return await session.request(
            method,
            url,
            headers=headers,
            allow_redirects=False,
            json=json if hop == 0 else None,
            data=data if hop == 0 else None,
            # Made on first use: a run over plain http (the tests) never loads the CAs.
            ssl=tls_context() if url.startswith("https:") else True,
        )

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
                data = await response.json(content_type=None)
                link = response.links.get("next")
                next_url = urljoin(str(response.url), str(link["url"])) if link else None
            yield data


async def raise_for_status(response: aiohttp.ClientResponse) -> None:
    """HttpError (status, headers, the body's first 4 KiB) for any answer that is not 2xx."""
    if response.status >= 300:
        body = (await response.content.read(4096)).decode("utf-8", "replace")
        raise HttpError(response.status, str(response.url), response.headers, body)
