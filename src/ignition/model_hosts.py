"""The public hosts of the two model services Ignition knows, shared by the stages below which a
link is parsed (spec) and fetched (resolve)."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ignition.settings import Settings

HF_HOSTS = frozenset({"huggingface.co", "hf.co", "www.huggingface.co"})
CIVITAI_HOSTS = frozenset({"civitai.com", "www.civitai.com"})


def on_configured_endpoint(url: str, settings: Settings) -> str:
    """A huggingface.co / civitai.com link moved onto the configured endpoint (a mirror, a
    test's fake); any other link unchanged."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if host in HF_HOSTS:
        endpoint = settings.hf_endpoint
    elif host in CIVITAI_HOSTS:
        endpoint = settings.civitai_endpoint
    else:
        return url
    base = urlsplit(endpoint)
    return urlunsplit((base.scheme, base.netloc, parts.path, parts.query, ""))
