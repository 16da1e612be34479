"""Fixtures only: the fake services on loopback, and settings pointing at them. What tests
import lives in support.py (helpers) and fakes/ (the fakes and `Fakes`)."""

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fakes.civitai import CivitaiFile, FakeCivitai
from fakes.huggingface import FakeHuggingFace
from fakes.registry import FakeRegistry
from fakes.services import Fakes
from fakes.storage import Blob, BytesBlob, FakeStorage
from ignition._http import HttpClient
from ignition.fetch import Tuning
from ignition.records import FetchRequest
from ignition.settings import SETTINGS_ENV_NAMES
from pod_harness import Pod
from support import FAST_RETRY

# Whatever the developer's shell sets for Ignition must not reach the settings a test builds.
_ENV_THAT_LEAKS_INTO_SETTINGS = sorted(SETTINGS_ENV_NAMES - {"HOME"})


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV_THAT_LEAKS_INTO_SETTINGS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fakes(tmp_path: Path) -> Iterator[Fakes]:
    storage = FakeStorage()
    civitai = FakeCivitai(storage)
    hf = FakeHuggingFace(storage)
    servers = [storage.server, civitai.server, hf.server]
    for server in servers:
        server.start()
    try:
        yield Fakes(storage, civitai, hf, tmp_path)
    finally:
        for server in servers:
            server.stop()


# --- the download engine's tests: one file at a time through CivitAI's endpoint ---------------


@pytest.fixture
def storage(fakes: Fakes) -> FakeStorage:
    """The store, throttled like a CDN connection, so that connections overlap as for real."""
    fakes.storage.throttle(per_connection_bps=16 << 20, total_bps=None)
    return fakes.storage


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    # A short read timeout: that is how long a stalled connection takes to be given up.
    async with HttpClient(connections=4, read_timeout_s=1, retry=FAST_RETRY) as http:
        yield http


@pytest.fixture
def tuning() -> Tuning:
    """Engine knobs scaled to test files of a few MB and to faults that should resolve fast."""
    return Tuning(
        buffer_bytes=64 * 1024,
        min_split_bytes=256 * 1024,
        save_every_s=0.05,
    )


@pytest.fixture
def make_request(fakes: Fakes, storage: FakeStorage) -> Callable[..., tuple[FetchRequest, Blob]]:
    """Publish `data` as a CivitAI model version and describe it as the resolver would."""
    version_ids = itertools.count(1)

    def make(
        data: bytes, name: str = "model.safetensors", **overrides: Any
    ) -> tuple[FetchRequest, Blob]:
        version = next(version_ids)
        fakes.civitai.add(version, files=[CivitaiFile(version * 10, name, data)])
        blob = BytesBlob(data)
        fields: dict[str, Any] = {
            "url": f"{fakes.civitai.url}/api/download/models/{version}",
            "staging_path": fakes.tmp_path / "staging" / name,
            "expected_size": blob.size,
            "expected_sha256": blob.sha256(),
            "identity": f"sha256:{blob.sha256()}",
            "label": name,
        }
        fields.update(overrides)
        return FetchRequest(**fields), blob

    return make


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    """A fake Comfy Registry on 127.0.0.1 whose archives live on a storage host (127.0.0.2)."""
    storage = FakeStorage()
    fake = FakeRegistry(storage)
    storage.server.start()
    fake.server.start()
    yield fake
    fake.server.stop()
    storage.server.stop()


@pytest.fixture
def pods() -> Iterator[list[Pod]]:
    """Pods a test starts (append them); each is killed when the test ends, pass or fail."""
    started: list[Pod] = []
    yield started
    for pod in started:
        pod.kill()
