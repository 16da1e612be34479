"""A COMFYUI_WORKFLOWS / --workflow source → the workflow's text: a local file, or a URL fetched
through the HTTP layer (huggingface.co / civitai.com links from the configured endpoint)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ignition._http import NETWORK_ERRORS, HttpClient, describe_network_error, redact_url
from ignition.errors import SpecError
from ignition.model_hosts import on_configured_endpoint
from ignition.settings import Settings


async def load_workflow(client: HttpClient, source: str, settings: Settings) -> str:
    """The workflow text at `source`: a local path, or an http(s) URL fetched through `client`."""
    if not source.startswith(("http://", "https://")):
        return await asyncio.to_thread(_read_local, source)
    url = on_configured_endpoint(source, settings)
    try:
        async with client.get(url) as response:
            if response.status >= 300:
                raise SpecError(
                    f"workflow {redact_url(source)}: HTTP {response.status}",
                    hint="check the URL; a private file needs a public or raw link",
                )
            return await response.text(encoding="utf-8")
    except NETWORK_ERRORS as error:
        raise SpecError(
            f"workflow {redact_url(source)} cannot be fetched: {describe_network_error(error)}",
            hint="check the network and the URL",
        ) from None


def _read_local(source: str) -> str:
    try:
        return Path(source).expanduser().read_text(encoding="utf-8")
    except OSError as error:
        reason = error.strerror or str(error)
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    raise SpecError(
        f"workflow {source} cannot be read: {reason}",
        hint="check the path in --workflow / COMFYUI_WORKFLOWS",
    )
