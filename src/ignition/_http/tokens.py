"""Which token a request carries, and keeping tokens out of server text.

A token belongs to a service and the endpoint it was configured with: it is sent only to URLs
under that endpoint — same scheme (never over http when the endpoint is https), host, port and
path prefix. When two services share one origin (a mirror serving both CivitAI and Hugging
Face), the service a request is made for (`acting_for`) picks the token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from urllib.parse import urlsplit

# Every token an HttpClient was given, so that server text echoing one (an error page that
# repeats the request's headers) is masked before it becomes a message.
_KNOWN_SECRETS: set[str] = set()
_BEARER_IN_TEXT = re.compile(r"(?i)(bearer\s+)[^\s'\"<>,;]+")
_MASK = "***"
# No real token is shorter; masking "ab" would garble every message.
_SHORTEST_MASKED = 6
# The service the current task makes requests for; inherited by the tasks it starts.
_SERVICE: ContextVar[str | None] = ContextVar("ignition_http_service", default=None)


def remember_secrets(secrets: Sequence[str]) -> None:
    """Add tokens to those `mask_secrets` hides (a client does this for the tokens it holds)."""
    _KNOWN_SECRETS.update(secret for secret in secrets if secret)


def mask_secrets(text: str, extra: Sequence[str] = ()) -> str:
    """`text` with every known token, every one of `extra`, and anything after `Bearer `
    replaced by `***`: for server text and exception text on their way into a message."""
    for secret in sorted({*_KNOWN_SECRETS, *extra}, key=len, reverse=True):
        if len(secret) >= _SHORTEST_MASKED:
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

    service: str  # "civitai", "huggingface", "runpod", "github"
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


def choose_token(tokens: Sequence[ServiceToken], url: str) -> str | None:
    """The token for `url`, or None when no configured endpoint covers it.

    Of the endpoints covering `url`, those of the service named by `acting_for` (when one is),
    and of those the longest path prefix; two different tokens still in the running means nobody
    can tell whose request this is, and none is sent.
    """
    service = _SERVICE.get()
    covering = [
        (prefix, entry)
        for entry in tokens
        if (prefix := entry.path_covering(url)) is not None
        and (service is None or entry.service == service)
    ]
    if not covering:
        return None
    longest = max(len(prefix) for prefix, _ in covering)
    found = {entry.token for prefix, entry in covering if len(prefix) == longest}
    return found.pop() if len(found) == 1 else None
