"""A COMFYUI_WORKFLOWS / --workflow source → the workflow's bytes: a local file, or a URL fetched
through the HTTP layer (huggingface.co / civitai.com links from the configured endpoint). Either
way at most `bounded_json.MAX_JSON_BYTES`: a "workflow" URL may serve gigabytes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ignition import bounded_json
from ignition._http import (
    NETWORK_ERRORS,
    HttpClient,
    acting_for,
    describe_network_error,
    redact_url,
)
from ignition.errors import SpecError
from ignition.model_hosts import on_configured_endpoint
from ignition.settings import Settings


async def load_workflow(client: HttpClient, source: str, settings: Settings) -> bytes:
    """The workflow document at `source`: a local path, or an http(s) URL fetched through
    `client` (with the token of the service whose endpoint serves it, if any)."""
    if not source.startswith(("http://", "https://")):
        return await asyncio.to_thread(_read_local, source)
    url, service = on_configured_endpoint(source, settings)
    what = f"workflow {redact_url(source)}"
    try:
        with acting_for(service):
            async with client.get(url) as response:
                if response.status >= 300:
                    raise SpecError(
                        f"{what}: HTTP {response.status}",
                        hint="check the URL; a private file needs a public or raw link",
                    )
                return await bounded_json.read_body(response, what=what)
    except bounded_json.UntrustedJsonError as error:
        raise SpecError(str(error), hint="check the URL: it should serve a workflow") from None
    except NETWORK_ERRORS as error:
        raise SpecError(
            f"{what} cannot be fetched: {describe_network_error(error)}",
            hint="check the network and the URL",
        ) from None


def _read_local(source: str) -> bytes:
    limit = bounded_json.MAX_JSON_BYTES
    try:
        with Path(source).expanduser().open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as error:
        reason = error.strerror or str(error)
    else:
        if len(data) <= limit:
            return data
        reason = f"larger than the {limit} bytes a workflow may have"
    raise SpecError(
        f"workflow {source} cannot be read: {reason}",
        hint="check the path in --workflow / COMFYUI_WORKFLOWS",
    )
