"""Everything a node pack test provisions against, all real and all on loopback.

A fake Comfy Registry (127.0.0.1) with its storage host (127.0.0.2), a git smart-HTTP server,
a local wheel index (UV_FIND_LINKS with UV_OFFLINE: PyPI is never asked) and a venv with a fake
torch 2.5.0 as COMFYUI_PYTHON. The index also holds torch 9.0.0: what a pack's requirement
would pull in if torch were not pinned.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uv

from fakes.git_server import GitServer
from fakes.registry import FakeRegistry
from fakes.storage import FakeStorage
from fakes.wheels import build_wheel, make_comfy_python
from ignition.nodes_pipeline import provision_nodes
from ignition.report import ProvisionReport
from ignition.settings import Settings

TORCH = "2.5.0"


@dataclass
class NodeWorld:
    tmp: Path
    registry: FakeRegistry
    git: GitServer
    index: Path
    python: Path  # the logging wrapper: COMFYUI_PYTHON

    @property
    def workspace(self) -> Path:
        return self.tmp / "workspace"

    @property
    def custom_nodes(self) -> Path:
        return self.workspace / "ComfyUI" / "custom_nodes"

    @property
    def real_python(self) -> Path:
        return self.python.parent / "python"

    def python_runs(self) -> list[str]:
        log = self.python.parent.parent / "runs.log"
        return log.read_text().splitlines() if log.exists() else []

    def settings(self, nodes: str = "", workflows: str = "", **overrides: Any) -> Settings:
        return Settings(
            comfyui_nodes=nodes,
            comfyui_workflows=workflows,
            workspace=self.workspace,
            comfy_registry_endpoint=self.registry.url,
            github_endpoint=self.git.url,
            comfyui_python=str(self.python),
            run_dir=self.tmp / "run",
            **overrides,
        )

    def provision(self, nodes: str = "", workflows: str = "", **kw: Any) -> ProvisionReport:
        dry_run = kw.pop("dry_run", False)
        return asyncio.run(provision_nodes(self.settings(nodes, workflows, **kw), dry_run=dry_run))

    def workflow(self, name: str, document: object) -> str:
        path = self.tmp / name
        path.write_text(json.dumps(document))
        return str(path)


def by_name(report: ProvisionReport) -> dict[str, Any]:
    return {pack.name: pack for pack in report.packs}


@pytest.fixture(scope="session", name="wheel_index")
def wheel_index_fixture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    index = tmp_path_factory.mktemp("wheels")
    build_wheel(index, "torch", TORCH)
    build_wheel(index, "torch", "9.0.0")
    for name in ("nodelib-a", "nodelib-c", "nodelib-d"):
        build_wheel(index, name, "1.0.0")
    build_wheel(index, "nodelib-b", "1.0.0", requires=("torch",))
    build_wheel(index, "greedy", "1.0.0", requires=("torch>=9",))
    return index


@pytest.fixture(name="world")
def world_fixture(
    tmp_path: Path, wheel_index: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[NodeWorld]:
    monkeypatch.setenv("UV_FIND_LINKS", str(wheel_index))
    monkeypatch.setenv("UV_OFFLINE", "1")  # find-links only: PyPI is never asked
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(wheel_index))
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))
    python = make_comfy_python(tmp_path / "venv", wheel_index, uv.find_uv_bin(), TORCH)
    storage = FakeStorage()
    registry = FakeRegistry(storage)
    git = GitServer(tmp_path / "git")
    storage.server.start()
    registry.server.start()
    git.start()
    try:
        yield NodeWorld(tmp_path, registry, git, wheel_index, python)
    finally:
        git.stop()
        registry.server.stop()
        storage.server.stop()
