"""Shared fixtures: the fake services on loopback, and settings pointing at them."""

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fakes.civitai import CivitaiFile, FakeCivitai
from fakes.huggingface import FakeHuggingFace
from fakes.storage import Blob, BytesBlob, FakeStorage
from ignition._http import HttpClient, RetryPolicy
from ignition.fetch import Tuning
from ignition.records import FetchRequest
from ignition.settings import Settings


async def _no_wait(_: float) -> None:
    return None


# Retries without waiting: every retry path runs, none of them slows the suite down.
FAST_RETRY = RetryPolicy(first_delay_s=0.0, max_delay_s=0.0, sleep=_no_wait)

_ENV_THAT_LEAKS_INTO_SETTINGS = (
    "CIVITAI_MODELS", "HUGGINGFACE_MODELS", "CIVITAI_TOKEN", "CIVITAI_API_KEY", "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN", "CIVITAI_ENDPOINT", "HF_ENDPOINT", "IGNITION_MODELS_DIR",
    "IGNITION_RUN_DIR", "WORKSPACE", "COMFYUI_WORKFLOWS", "COMFYUI_NODES", "GITHUB_TOKEN",
    "COMFY_REGISTRY_ENDPOINT", "GITHUB_ENDPOINT",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _ENV_THAT_LEAKS_INTO_SETTINGS:
        monkeypatch.delenv(name, raising=False)


@dataclass
class Fakes:
    storage: FakeStorage
    civitai: FakeCivitai
    hf: FakeHuggingFace
    tmp_path: Path

    @property
    def models_dir(self) -> Path:
        return self.tmp_path / "models"

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "civitai_endpoint": self.civitai.url,
            "hf_endpoint": self.hf.url,
            "models_dir_override": self.models_dir,
            "run_dir": self.tmp_path / "run",
            "workspace": self.tmp_path / "workspace",
        }
        values.update(overrides)
        return Settings(**values)

    def env(self, **extra: str) -> dict[str, str]:
        """Environment for running `ignition` as a subprocess against the fakes."""
        return {
            "CIVITAI_ENDPOINT": self.civitai.url,
            "HF_ENDPOINT": self.hf.url,
            "IGNITION_RUN_DIR": str(self.tmp_path / "run"),
            "WORKSPACE": str(self.tmp_path / "workspace"),
            **extra,
        }


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
