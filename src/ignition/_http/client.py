"""The HTTP client of a run: sessions, per-service auth, redirects, the address guard, redaction.

Tokens are attached in exactly one place (`HttpClient.auth_headers`) and only to URLs under the
endpoint each was configured with, over its scheme (`tokens.py`). Redirects are followed by hand
so that every hop is re-checked: CivitAI's presigned storage host answers 400 when an
Authorization header reaches it, a token must never leak to a CDN, and a hop may not lead to a
private address (`addresses.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from ignition import bounded_json
from ignition._http.addresses import AddressGuard, CheckingResolver, Classifier, is_public_address
from ignition._http.basics import (
    USER_AGENT,
    HttpError,
    describe_network_error,
    host_of,
    raise_for_status,
    redact_url,
    tls_context,
)
from ignition._http.body import RangedAnswer, ResponseAnswer
from ignition._http.proxies import Proxies
from ignition._http.retry import RetryPolicy
from ignition._http.tokens import ServiceToken, choose_token, remember_secrets
from ignition._http.wire import WirePool
from ignition.errors import PrivateAddressError

if TYPE_CHECKING:
    from ignition.settings import Settings

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Asking again after a lost answer does no harm (RFC 9110 §9.2.2).
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_MAX_REDIRECTS = 10
_ONE_TRY = RetryPolicy(attempts=1)


class HttpClient:
    """One aiohttp session for a run, with tokens scoped to their API hosts.

    `tokens` maps an API endpoint (e.g. "https://civitai.com") to its bearer token.
    `allow_private` (IGNITION_ALLOW_PRIVATE_URLS) lets requests and redirects reach private
    addresses; `is_public` decides what counts as public (tests stand loopback in for the
    internet with it). `proxies` come from Settings: the environment is never read here.
    """

    def __init__(
        self,
        tokens: Mapping[str, str | None] | Sequence[ServiceToken] | None = None,
        *,
        connections: int = 16,
        connect_timeout_s: float = 30.0,
        read_timeout_s: float = 60.0,
        retry: RetryPolicy | None = None,
        allow_private: bool = False,
        is_public: Classifier = is_public_address,
        proxies: Proxies | None = None,
    ) -> None:
        if isinstance(tokens, Mapping):
            tokens = [ServiceToken(endpoint, endpoint, token) for endpoint, token in tokens.items()]
        self._tokens = [entry for entry in tokens or () if entry.token]
        remember_secrets([entry.token for entry in self._tokens if entry.token])
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._session: aiohttp.ClientSession | None = None
        # Hops that must reach public addresses go through a session of their own, so that a
        # connection to a private address kept alive by the other can never be reused for one.
        self._public_session: aiohttp.ClientSession | None = None
        self._proxies = proxies or Proxies()
        self._guard = AddressGuard(
            allow_private=allow_private, is_public=is_public, exempt_hosts=self._proxies.hosts
        )
        # The download budget: how many ranged transfers stream at once, across all files.
        self._slots = asyncio.Semaphore(connections)
        self._wire = WirePool(
            connect_timeout_s=connect_timeout_s, read_timeout_s=read_timeout_s, guard=self._guard
        )
        self.retry = retry or RetryPolicy()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        tokens: Mapping[str, str | None] | Sequence[ServiceToken] | None = None,
        **options: Any,
    ) -> HttpClient:
        """A client as the settings say: connections, private addresses, proxies; `options`
        as for the constructor (timeouts, retry …)."""
        options.setdefault("connections", settings.connections)
        return cls(
            tokens,
            allow_private=settings.allow_private_urls,
            proxies=Proxies.of(settings),
            **options,
        )

    async def __aenter__(self) -> HttpClient:
        self._session = self._new_session(public_only=False)
        if not self._guard.allow_private:
            self._public_session = self._new_session(public_only=True)
        return self

    def _new_session(self, *, public_only: bool) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._connections * 2,
            limit_per_host=0,
            resolver=CheckingResolver(self._guard, public_only=public_only),
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            headers={"User-Agent": USER_AGENT},
            # Model bytes must arrive exactly as stored: sha256 is computed over them.
            auto_decompress=False,
            # Proxies come from Settings, per request: the environment (and ~/.netrc) is not read.
            trust_env=False,
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._wire.close()
        for session in (self._session, self._public_session):
            if session is not None:
                await session.close()
        self._session = self._public_session = None

    @property
    def read_timeout_s(self) -> float:
        """No byte for this long on a connection is a stall (the engine retries the range)."""
        return float(self._timeout.sock_read or 0)

    @property
    def connections(self) -> int:
        """How many transfers may stream at once (IGNITION_CONNECTIONS): the fetch budget."""
        return self._connections

    @asynccontextmanager
    async def transfer_slot(self) -> AsyncIterator[None]:
        """Hold one of the `connections` slots for one transfer: several files fetched at once
        share the link instead of each opening its own connections, and take turns fairly."""
        async with self._slots:
            yield

    @asynccontextmanager
    async def ranged(
        self, url: str, first: int, last: int, *, buffer_bytes: int
    ) -> AsyncIterator[RangedAnswer]:
        """GET bytes first..last of `url` once (no retry: the caller knows which bytes are still
        missing and asks again itself), on the transport the client picks.

        Directly reachable URLs go over the client's own keep-alive connections (wire.py: the
        socket is read into a `buffer_bytes` buffer that is written to the file in place); a
        plain 206 or a retryable status is answered there. Anything else (a redirect, an error
        to explain, a chunked body) and every URL behind a proxy is asked through aiohttp.
        """
        if self._direct(url):
            headers = self.auth_headers(url)
            retryable = self.retry.retryable
            wired = await self._wire.ranged(url, first, last, headers, buffer_bytes, retryable)
            if wired is not None:
                try:
                    yield wired
                finally:
                    wired.close()
                return
        range_header = {"Range": f"bytes={first}-{last}"}
        async with self.get(url, headers=range_header, retry=_ONE_TRY) as response:
            yield self.answer(response, buffer_bytes=buffer_bytes)

    def answer(self, response: aiohttp.ClientResponse, *, buffer_bytes: int) -> RangedAnswer:
        """A response of this client as a RangedAnswer, its body written in `buffer_bytes`
        batches (the engine's first request, which also discovers the file)."""
        return ResponseAnswer(
            response, buffer_bytes=buffer_bytes, read_timeout_s=self.read_timeout_s
        )

    def _direct(self, url: str) -> bool:
        """Whether `url` may go over the client's own connections: http(s), and no proxy."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        return self._proxies.for_url(url) is None

    @property
    def _open_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("HttpClient used outside `async with`")
        return self._session

    def auth_headers(self, url: str) -> dict[str, str]:
        """The Authorization header for `url`, or nothing when no configured endpoint covers it
        (see `tokens.choose_token`)."""
        token = choose_token(self._tokens, url)
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
            proxy=self._proxies.for_url(url.replace("ws", "http", 1)),
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
            guarded = guarded or self._guard.pinned(host)
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
                self._guard.pin(host)
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
            guarded = guarded or self._guard.seen_public(host)
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
        self._guard.admit_literal(urlsplit(url).hostname or "", public_only=guarded)
        session = self._public_session if guarded and self._public_session else self._open_session
        return await session.request(
            method,
            url,
            headers=headers,
            allow_redirects=False,
            json=json if hop == 0 else None,
            data=data if hop == 0 else None,
            proxy=self._proxies.for_url(url),
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
                data = await bounded_json.read_json(response, what=redact_url(next_url))
                link = response.links.get("next")
                next_url = urljoin(str(response.url), str(link["url"])) if link else None
            yield data
