"""`ignition start` with node packs: installed before ComfyUI's first start, loaded by it (the
stand-in imports custom_nodes like ComfyUI and lists the classes in /object_info), and found
again on the next start without a single request."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fakes.registry import FakeRegistry, node_pack_files
from fakes.storage import FakeStorage
from pod_harness import Pod, make_pod

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def registry() -> Iterator[FakeRegistry]:
    storage = FakeStorage()
    fake = FakeRegistry(storage)
    storage.server.start()
    fake.server.start()
    yield fake
    fake.server.stop()
    storage.server.stop()


def _run_pod(root: Path, registry: FakeRegistry) -> Pod:
    pod = make_pod(
        root,
        COMFYUI_NODES="standin-pack@1.0.0",
        COMFY_REGISTRY_ENDPOINT=registry.url,
        NUKE_ON_STOP="false",
    )
    pod.start()
    return pod


def test_packs_are_installed_before_comfyui_starts_and_warm_next_time(
    tmp_path: Path, registry: FakeRegistry
) -> None:
    registry.publish("standin-pack", "1.0.0", node_pack_files("StandinNode"))
    pod = _run_pod(tmp_path, registry)
    try:
        pod.wait_ready(timeout_s=60)
        assert "StandinNode" in pod.get("/object_info/StandinNode")
        status = pod.status()["nodes"]
        assert status["state"] == "done"
        assert status["packs"][0]["status"] == "ok"
        log = pod.startup_log
        assert log.index("nodes: 1 of 1 pack(s) in place") < log.index("Import times for custom")
        assert "soft restart" not in log
        assert pod.cli("stop").returncode == 0
        pod.wait_exit()
    finally:
        pod.kill()
    asked = registry.total_requests

    again = _run_pod(tmp_path, registry)
    try:
        again.wait_ready(timeout_s=60)
        assert "StandinNode" in again.get("/object_info/StandinNode")
        assert again.status()["nodes"]["packs"][0]["status"] == "skipped"
        assert registry.total_requests == asked
        assert again.cli("stop").returncode == 0
        again.wait_exit()
    finally:
        again.kill()
