"""The only importer of the HTTP library: client factory, per-host auth, redirects, redaction.

Tokens are attached in exactly one place (`HttpClient.auth_headers`) and only when a request's
host is the host the token belongs to. Redirects are followed by hand so that every hop is
re-checked: CivitAI's presigned storage host answers 400 when an Authorization header reaches
it, and a token must never leak to a CDN.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import aiohttp

from ignition import __version__

# A plain, non-browser User-Agent: CivitAI's WAF blocks urllib's default, and a browser-like UA
# makes CivitAI answer "login required" with a redirect to an HTML page instead of a 401.
USER_AGENT = f"ignition/{__version__} (ComfyUI provisioner)"

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 10
# Query keys safe to show in logs; everything else (token, X-Amz-Signature, Expires …) is dropped.
_SHOWABLE_QUERY_KEYS = frozenset({"modelVersionId", "type", "format", "size", "fp", "fileId"})


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
    """

    def __init__(
        self,
        tokens: Mapping[str, str | None] | None = None,
        *,
        connections: int = 16,
        connect_timeout_s: float = 30.0,
        read_timeout_s: float = 60.0,
    ) -> None:
        self._tokens = {host_of(endpoint): token for endpoint, token in (tokens or {}).items()}
        self._connections = connections
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout_s, sock_read=read_timeout_s
        )
        self._session: aiohttp.ClientSession | None = None

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
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
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
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """GET `url`, following redirects hop by hop with auth re-scoped at every hop.

        The final response is yielded whatever its status; `response.url` is where it came from.
        """
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            request_headers = {"Accept-Encoding": "identity", **(headers or {})}
            request_headers.update(self.auth_headers(current))
            response = await self.session.request(
                method, current, headers=request_headers, allow_redirects=False
            )
            location = response.headers.get("Location")
            if response.status in _REDIRECT_STATUSES and location:
                response.release()
                # HF answers small files with a relative Location: resolve against this hop.
                current = urljoin(current, location)
                continue
            try:
                yield response
            finally:
                response.release()
            return
        raise HttpError(310, current, {}, f"more than {_MAX_REDIRECTS} redirects")

    async def get_json(self, url: str) -> object:
        """GET a JSON API resource; any non-2xx answer raises HttpError for the caller to map."""
        async with self.get(url, headers={"Accept": "application/json"}) as response:
            if response.status >= 300:
                body = (await response.content.read(4096)).decode("utf-8", "replace")
                raise HttpError(response.status, str(response.url), response.headers, body)
            return await response.json(content_type=None)
