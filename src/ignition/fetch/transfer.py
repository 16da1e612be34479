"""A single-connection transfer: stream one URL into its staging file, hashing as it writes.

Correctness first: the multi-connection resumable engine replaces this module behind the same
`fetch_file` signature.
"""

from __future__ import annotations

import contextlib
import hashlib

from ignition._http import NETWORK_ERRORS, HttpClient, describe_network_error, raise_for_status
from ignition.errors import SizeMismatchError, TransferStalledError
from ignition.fetch.progress import TransferProgress
from ignition.fetch.verify import check_body_start
from ignition.records import FetchedFile, FetchRequest

_CHUNK_BYTES = 1024 * 1024
# Whole-file restarts after a connection drops mid-body (the client already retries answers
# like 429/5xx before the body starts).
_ATTEMPTS = 3


async def fetch_file(
    client: HttpClient, request: FetchRequest, progress: TransferProgress
) -> FetchedFile:
    """Fetch `request.url` into `request.staging_path`.

    Steps: GET (the client follows redirects, re-scoping auth, and retries 429/5xx) → non-2xx
    raises HttpError for the source to explain → the first bytes must not be a web page →
    write and hash every chunk → the byte count must equal Content-Length → FetchedFile.
    On failure the staging file is removed: this transfer never resumes.
    """
    for attempt in range(_ATTEMPTS):
        try:
            return await _fetch_once(client, request, progress)
        except NETWORK_ERRORS as error:
            _discard(request)
            if attempt + 1 == _ATTEMPTS:
                raise TransferStalledError(
                    f"{request.label}: the connection broke {_ATTEMPTS} times "
                    f"(last: {describe_network_error(error)})",
                    hint="the network, not Ignition, dropped the transfer; run again",
                ) from None
        except BaseException:
            _discard(request)
            raise
    raise AssertionError("unreachable")


async def _fetch_once(
    client: HttpClient, request: FetchRequest, progress: TransferProgress
) -> FetchedFile:
    progress.reset(0)
    request.staging_path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    received = 0
    async with client.get(request.url) as response:
        await raise_for_status(response)
        announced = response.content_length
        progress.set_total(announced if announced is not None else request.expected_size)
        with request.staging_path.open("wb") as handle:
            async for chunk in response.content.iter_chunked(_CHUNK_BYTES):
                if received == 0:
                    check_body_start(chunk, response.headers.get("Content-Type"), request.label)
                handle.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                progress.advance(len(chunk))
    if announced is not None and received != announced:
        raise SizeMismatchError(
            f"{request.label}: the connection ended after {received} of {announced} bytes",
            hint="the network, not Ignition, cut the transfer short; run again",
        )
    return FetchedFile(request.staging_path, received, digest.hexdigest())


def _discard(request: FetchRequest) -> None:
    with contextlib.suppress(OSError):
        request.staging_path.unlink()
