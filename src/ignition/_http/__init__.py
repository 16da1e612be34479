"""The one HTTP layer: the only importer of the HTTP library, and the only code that opens
connections for HTTP.

    client.py     HttpClient: sessions, per-host tokens, redirects hop by hop, JSON, WebSocket,
                  ranged GETs on the transport it picks, the connection budget
    basics.py     User-Agent, TLS context, network errors told in one line, URL redaction
    body.py       a ranged answer whose body streams into a span of a file (aiohttp's kind)
    wire.py       the fast transport for ranged GETs: keep-alive connections read zero-copy
    proxies.py    which proxy a URL goes through (from Settings: HTTPS_PROXY, NO_PROXY …)
    addresses.py  the address guard: which resolved addresses a request may connect to
    retry.py      the one retry policy: retryable statuses, Retry-After, backoff, on_retry
    tokens.py     which token a URL gets (service, scheme, endpoint prefix); masking server text
"""

from ignition._http.addresses import is_public_address
from ignition._http.basics import (
    NETWORK_ERRORS,
    USER_AGENT,
    FormData,
    HttpError,
    Response,
    WebSocket,
    WebSocketMessageType,
    describe_network_error,
    host_of,
    is_certificate_error,
    raise_for_status,
    redact_url,
    tls_context,
)
from ignition._http.body import RangedAnswer, Span, StreamError, WriteAt
from ignition._http.client import HttpClient
from ignition._http.proxies import Proxies
from ignition._http.retry import RETRYABLE_STATUSES, RetryNotice, RetryPolicy, parse_retry_after
from ignition._http.tokens import ServiceToken, acting_for, mask_secrets
from ignition.errors import PrivateAddressError

__all__ = [
    "NETWORK_ERRORS",
    "RETRYABLE_STATUSES",
    "USER_AGENT",
    "FormData",
    "HttpClient",
    "HttpError",
    "PrivateAddressError",
    "Proxies",
    "RangedAnswer",
    "Response",
    "RetryNotice",
    "RetryPolicy",
    "ServiceToken",
    "Span",
    "StreamError",
    "WebSocket",
    "WebSocketMessageType",
    "WriteAt",
    "acting_for",
    "describe_network_error",
    "host_of",
    "is_certificate_error",
    "is_public_address",
    "mask_secrets",
    "parse_retry_after",
    "raise_for_status",
    "redact_url",
    "tls_context",
]
