"""Verification: sha256/size, safetensors header sanity, web pages where weights belong."""

import struct
from pathlib import Path

import pytest

from fakes.content import model_bytes, sha256
from ignition.errors import ChecksumMismatchError, NotAModelError, SizeMismatchError
from ignition.fetch.verify import check_body_start, check_fetched, check_safetensors_header
from ignition.records import FetchedFile, FetchRequest


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "blob.part"
    path.write_bytes(data)
    return path


def test_a_good_safetensors_file_passes(tmp_path: Path) -> None:
    data = model_bytes("ok")
    path = write(tmp_path, data)
    request = FetchRequest("u", path, len(data), sha256(data), "id", "vae/x.safetensors")
    check_fetched(FetchedFile(path, len(data), sha256(data)), request, "x.safetensors")


def test_size_and_sha_mismatches_are_named(tmp_path: Path) -> None:
    data = model_bytes("ok")
    path = write(tmp_path, data)
    fetched = FetchedFile(path, len(data), sha256(data))
    with pytest.raises(SizeMismatchError):
        check_fetched(fetched, FetchRequest("u", path, 1, None, "i", "l"), "x.bin")
    with pytest.raises(ChecksumMismatchError):
        check_fetched(fetched, FetchRequest("u", path, None, "0" * 64, "i", "l"), "x.bin")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01\x00",
        struct.pack("<Q", 10**12) + b"{}",  # header longer than the file
        struct.pack("<Q", 1) + b"{",  # below the minimum
        struct.pack("<Q", 4) + b"nope",  # not JSON
        struct.pack("<Q", 2) + b"[]",  # not an object
        struct.pack("<Q", 60)
        + b'{"w": {"dtype": "U8", "shape": [9], "data_offsets": [0, 9]}} ',  # truncated data
    ],
)
def test_bad_safetensors_headers_are_refused(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(NotAModelError):
        check_safetensors_header(write(tmp_path, data), "x.safetensors")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"<!DOCTYPE html><html>login</html>", None),
        (b"  <html><body>x</body></html>", "application/octet-stream"),
        (b'{"error":"Unauthorized","message":"log in"}', None),
        (b"\x7b\x22\x00\x00\x00\x00\x00\x00", "text/html; charset=utf-8"),
    ],
)
def test_pages_instead_of_weights_are_detected(body: bytes, content_type: str | None) -> None:
    with pytest.raises(NotAModelError):
        check_body_start(body, content_type, "x.safetensors")


def test_a_safetensors_whose_length_byte_looks_like_a_brace_is_fine() -> None:
    # Header length 0x7B = '{': the first byte of real weights can look like JSON.
    check_body_start(struct.pack("<Q", 0x227B) + b'{"a"', "binary/octet-stream", "x")
    check_body_start(model_bytes("m"), None, "x")
