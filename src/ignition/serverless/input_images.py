"""An input image's bytes: base64 (worker-comfyui), a data URI, or an http(s) URL.

A URL comes from whoever sent the job, so it is fetched as a third party's link: every hop must
reach a public address (IGNITION_ALLOW_PRIVATE_URLS=true lifts that, for tests and LAN
mirrors), and no more than `MAX_IMAGE_BYTES` is read whatever the server announces.
"""

from __future__ import annotations

import base64
import binascii

from ignition._http import NETWORK_ERRORS, HttpClient, describe_network_error, redact_url
from ignition.errors import JobInputError, PrivateAddressError
from ignition.serverless.job_input import InputImage

MAX_IMAGE_BYTES = 64 * 1024 * 1024
_CHUNK = 256 * 1024


async def image_bytes(client: HttpClient, image: InputImage) -> bytes:
    source = image.source.strip()
    if source.lower().startswith(("http://", "https://")):
        return await _fetch(client, image.name, source)
    return _decode(image.name, source)


def _decode(name: str, source: str) -> bytes:
    # A data URI: `data:image/png;base64,<payload>`; worker-comfyui accepts it with or without.
    payload = source.split(",", 1)[1] if source.startswith("data:") else source
    try:
        data = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError) as error:
        raise JobInputError(
            f"image {name!r} is neither base64, a data URI nor an http(s) URL ({error})"
        ) from error
    if len(data) > MAX_IMAGE_BYTES:
        raise JobInputError(f"image {name!r} is larger than {MAX_IMAGE_BYTES >> 20} MiB")
    return data


async def _fetch(client: HttpClient, name: str, url: str) -> bytes:
    shown = redact_url(url)
    try:
        async with client.get(url, public_only=True) as response:
            if response.status >= 300:
                raise JobInputError(f"image {name!r}: {shown} answered HTTP {response.status}")
            announced = response.content_length
            if announced is not None and announced > MAX_IMAGE_BYTES:
                raise JobInputError(_too_big(name, shown))
            data = bytearray()
            async for chunk in response.content.iter_chunked(_CHUNK):
                data += chunk
                if len(data) > MAX_IMAGE_BYTES:
                    raise JobInputError(_too_big(name, shown))
            return bytes(data)
    except PrivateAddressError as error:
        raise JobInputError(
            f"image {name!r}: {error}",
            hint="send a public URL or the image as base64 "
            "(IGNITION_ALLOW_PRIVATE_URLS=true allows private addresses)",
        ) from error
    except NETWORK_ERRORS as error:
        raise JobInputError(
            f"image {name!r}: {shown} could not be fetched: {describe_network_error(error)}"
        ) from error


def _too_big(name: str, shown: str) -> str:
    return f"image {name!r}: {shown} is larger than {MAX_IMAGE_BYTES >> 20} MiB"
