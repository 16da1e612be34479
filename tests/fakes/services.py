"""The three fakes a download test runs against, started together, and settings and an
environment pointing Ignition at them (the `fakes` fixture in conftest.py makes one)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakes.civitai import FakeCivitai
from fakes.huggingface import FakeHuggingFace
from fakes.storage import FakeStorage
from ignition.settings import Settings


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
