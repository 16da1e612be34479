"""What every part of the HTTP layer shares: the User-Agent, the TLS context, the network
errors and how they are told, redaction of URLs, and the error for an answer to interpret."""

from __future__ import annotations

import functools
import os
import re
import ssl
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import aiohttp

from ignition import __version__
from ignition._http.tokens import mask_secrets

# A plain, non-browser User-Agent: CivitAI's WAF blocks urllib's default, and a browser-like UA
# makes CivitAI answer "login required" with a redirect to an HTML page instead of a 401.
USER_AGENT = f"ignition/{__version__} (ComfyUI provisioner)"

# What a caller may hold without importing the HTTP library itself.
Response = aiohttp.ClientResponse
WebSocket = aiohttp.ClientWebSocketResponse
WebSocketMessageType = aiohttp.WSMsgType
FormData = aiohttp.FormData

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


async def raise_for_status(response: aiohttp.ClientResponse) -> None:
    """HttpError (status, headers, the body's first 4 KiB) for any answer that is not 2xx."""
    if response.status >= 300:
        body = (await response.content.read(4096)).decode("utf-8", "replace")
        sent = response.request_info.headers.get("Authorization", "")
        secrets = [sent, sent.partition(" ")[2]] if sent else []
        raise HttpError(response.status, str(response.url), response.headers, body, secrets=secrets)
