from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from fakes.storage import Blob, StorageServer
from ignition._http import HttpClient
from ignition.fetch import Tuning
from ignition.records import FetchRequest


@pytest.fixture
async def storage() -> AsyncIterator[StorageServer]:
    """The presigned object store on 127.0.0.2 (its download endpoint on 127.0.0.1).

    Throttled like a CDN connection, so that connections overlap as they do for real.
    """
    async with StorageServer(per_connection_bps=16 << 20) as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    async with HttpClient(connections=4, read_timeout_s=10) as http:
        yield http


@pytest.fixture
def tuning() -> Tuning:
    """Engine knobs scaled to test files of a few MB and to faults that should resolve fast."""
    return Tuning(
        buffer_bytes=64 * 1024,
        min_split_bytes=256 * 1024,
        stall_timeout_s=1.0,
        backoff_s=0.01,
        rate_limit_backoff_s=0.05,
        backoff_max_s=0.2,
        save_every_s=0.05,
    )


@pytest.fixture
def make_request(
    storage: StorageServer, tmp_path: Path
) -> Callable[..., tuple[FetchRequest, Blob]]:
    """Put `data` on the store and describe it as the resolver would."""

    def make(
        data: bytes | Blob, name: str = "model.safetensors", **overrides: Any
    ) -> tuple[FetchRequest, Blob]:
        blob = storage.add(name, data)
        fields: dict[str, Any] = {
            "url": storage.download_url(name),
            "staging_path": tmp_path / "staging" / name,
            "expected_size": blob.size,
            "expected_sha256": blob.sha256(),
            "identity": blob.sha256(),
            "label": name,
        }
        fields.update(overrides)
        return FetchRequest(**fields), blob

    return make
