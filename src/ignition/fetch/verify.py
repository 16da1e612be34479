"""Is this file the bytes we were promised? sha256, size, a sane safetensors header, and no
HTML or JSON page where weights were expected (the classic login page saved as .safetensors)."""

from __future__ import annotations

import struct
from pathlib import Path

from ignition import bounded_json
from ignition.errors import ChecksumMismatchError, NotAModelError, SizeMismatchError
from ignition.records import FetchedFile, FetchRequest

# A safetensors header is JSON describing tensors; real ones are KBs to a few MB.
_MAX_SAFETENSORS_HEADER_BYTES = 100 * 1024 * 1024
_TEXT_PREFIXES = (b"<!doctype", b"<html", b"<?xml", b"<head", b"<body", b'{"', b"[")
_PAGE_CONTENT_TYPES = ("text/html", "application/json", "text/plain", "application/xml")


def check_body_start(first_bytes: bytes, content_type: str | None, label: str) -> None:
    """Raise NotAModelError when a response is a web page or an error document."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media in _PAGE_CONTENT_TYPES or _looks_like_text(first_bytes):
        excerpt = first_bytes[:120].decode("utf-8", "replace").replace("\n", " ")
        raise NotAModelError(
            f"{label}: the server sent a {media or 'text'} page instead of model weights "
            f"({excerpt!r})",
            hint="this usually means a login or licence page; check the token for this source",
        )


def _looks_like_text(data: bytes) -> bool:
    # A safetensors file starts with an 8-byte little-endian length whose high bytes are zero,
    # so its first 8 bytes always contain a NUL; a page's first 8 bytes never do.
    head = data[:8]
    if len(head) < 8 or b"\x00" in head:
        return False
    return data.lstrip()[:9].lower().startswith(_TEXT_PREFIXES)


def check_fetched(fetched: FetchedFile, request: FetchRequest, filename: str) -> None:
    """Size, sha256 and (for .safetensors) the header of bytes on disk against the request."""
    if request.expected_size is not None and fetched.size_bytes != request.expected_size:
        raise SizeMismatchError(
            f"{request.label}: received {fetched.size_bytes} bytes, expected "
            f"{request.expected_size}",
        )
    if request.expected_sha256 is not None and fetched.sha256 != request.expected_sha256:
        raise ChecksumMismatchError(
            f"{request.label}: sha256 {fetched.sha256[:16]}… does not match the published "
            f"{request.expected_sha256[:16]}…",
        )
    if filename.lower().endswith((".safetensors", ".sft")):
        check_safetensors_header(fetched.path, request.label)


def check_safetensors_header(path: Path, label: str) -> None:
    """8-byte little-endian header length, then a JSON object whose tensors fit in the file."""
    size = path.stat().st_size
    with path.open("rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            raise NotAModelError(f"{label}: {size} bytes is too short for a safetensors file")
        (header_length,) = struct.unpack("<Q", prefix)
        if not 2 <= header_length <= min(_MAX_SAFETENSORS_HEADER_BYTES, size - 8):
            raise NotAModelError(
                f"{label}: not a safetensors file (header length {header_length}, "
                f"file size {size})",
                hint="the source served something else under this name; report it to them",
            )
        raw = handle.read(header_length)
    try:
        # Published by whoever uploaded the model: a deep header must fail this file only.
        header = bounded_json.loads(
            raw, what="safetensors header", max_bytes=_MAX_SAFETENSORS_HEADER_BYTES
        )
    except ValueError as error:
        raise NotAModelError(
            f"{label}: {error}",
            hint="the file is not a usable safetensors model; report it to its publisher",
        ) from None
    if not isinstance(header, dict):
        raise NotAModelError(f"{label}: safetensors header is not a JSON object")
    data_bytes = size - 8 - header_length
    for name, tensor in header.items():
        if name == "__metadata__":
            continue
        offsets = tensor.get("data_offsets") if isinstance(tensor, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(isinstance(o, int) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_bytes
        ):
            raise NotAModelError(
                f"{label}: tensor {name!r} lies outside the file (truncated or corrupt)"
            )
