"""Shared fixtures: the fake services on loopback, and settings pointing at them."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fakes.civitai import FakeCivitai
from fakes.huggingface import FakeHuggingFace
from fakes.storage import FakeStorage
from ignition.settings import Settings

_ENV_THAT_LEAKS_INTO_SETTINGS = (
    "CIVITAI_MODELS", "HUGGINGFACE_MODELS", "CIVITAI_TOKEN", "CIVITAI_API_KEY", "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN", "CIVITAI_ENDPOINT", "HF_ENDPOINT", "IGNITION_MODELS_DIR",
    "IGNITION_RUN_DIR", "WORKSPACE",
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
