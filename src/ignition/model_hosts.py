"""The public hosts of the two model services Ignition knows, shared by the stages below which a
link is parsed (spec) and fetched (resolve)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ignition.settings import Settings

HF_HOSTS = frozenset({"huggingface.co", "hf.co", "www.huggingface.co"})
CIVITAI_HOSTS = frozenset({"civitai.com", "www.civitai.com"})


def on_configured_endpoint(url: str, settings: Settings) -> tuple[str, str | None]:
    """A huggingface.co / civitai.com link moved onto the configured endpoint (a mirror, a
    test's fake), with the service whose token it may carry; any other link unchanged, None."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host in HF_HOSTS:
        endpoint, service = settings.hf_endpoint, "huggingface"
    elif host in CIVITAI_HOSTS:
        endpoint, service = settings.civitai_endpoint, "civitai"
    else:
        return url, None
    base = urlsplit(endpoint)
    path = base.path.rstrip("/") + parts.path  # a mirror may serve under a prefix
    return urlunsplit((base.scheme, base.netloc, path, parts.query, "")), service
