"""`ignition start` with node packs: installed before ComfyUI's first start, loaded by it (the
stand-in imports custom_nodes like ComfyUI and lists the classes in /object_info), found again
on the next start without a single request, and a pack landing late gets one soft restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fakes.git_server import GitServer
from fakes.registry import FakeRegistry, node_pack_files, zip_files
from ignition.pin.build import build_lock
from ignition.pin.lockfile import LOCK_NAME
from ignition.settings import Settings
from ignition.spec.manifest import parse_manifest
from pod_harness import Pod, make_pod
from support import wait_for

pytestmark = pytest.mark.timeout(120)


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


def test_a_pack_that_lands_late_gets_one_soft_restart(tmp_path: Path) -> None:
    server = GitServer(tmp_path / "git").start()
    try:
        server.make_repo("owner/slow-pack", [node_pack_files("SlowNode")])
        server.delay_s = 1.0  # each of ls-remote and fetch: the clone outlasts the wait
        pod = make_pod(
            tmp_path / "pod",
            COMFYUI_NODES="owner/slow-pack",
            GITHUB_ENDPOINT=server.url,
            IGNITION_NODES_WAIT_S="0.2",
            NUKE_ON_STOP="false",
        )
        pod.start()
        try:
            first = pod.wait_ready(timeout_s=60)
            wait_for(lambda: pod.status()["nodes"]["state"] == "done", 60, "the slow pack")
            pod.wait_ready(not_pid=first["pid"], timeout_s=60)
            assert "SlowNode" in pod.get("/object_info/SlowNode")
            log = pod.startup_log
            assert "still busy after 0.2 s: ComfyUI starts without them" in log
            assert log.count("landed after ComfyUI started: one soft restart") == 1
            assert pod.comfyui()["restarts"] == 1
            assert pod.cli("stop").returncode == 0
            pod.wait_exit()
        finally:
            pod.kill()
    finally:
        server.stop()


def test_a_locked_manifest_installs_its_packs_and_refuses_a_changed_archive(
    tmp_path: Path, registry: FakeRegistry
) -> None:
    registry.publish("standin-pack", "1.0.0", node_pack_files("StandinNode"))
    registry.publish("moved-pack", "1.0.0", node_pack_files("MovedNode"))
    manifest = tmp_path / "project" / "ignition.yaml"
    manifest.parent.mkdir()
    manifest.write_text("version: 1\nnodes: [standin-pack@1.0.0, moved-pack@1.0.0]\n")
    settings = Settings(comfy_registry_endpoint=registry.url, workspace=tmp_path / "locking")
    result = asyncio.run(
        build_lock(settings, parse_manifest(manifest.read_text(), origin=str(manifest)))
    )
    assert result.lock is not None
    (manifest.parent / LOCK_NAME).write_text(result.lock.dumps())
    registry.packs["moved-pack"].versions[0].archive = zip_files(node_pack_files("Other"))

    pod = make_pod(
        tmp_path / "pod",
        IGNITION_MANIFEST=str(manifest),
        COMFY_REGISTRY_ENDPOINT=registry.url,
        NUKE_ON_STOP="false",
    )
    pod.start()
    try:
        pod.wait_ready(timeout_s=60)
        assert "StandinNode" in pod.get("/object_info/StandinNode")
        log = pod.startup_log
        assert "moved-pack@1.0.0: archive changed since locked" in log
        assert "nodes: 1 of 2 pack(s) in place" in log
        assert pod.cli("stop").returncode == 0
        pod.wait_exit()
    finally:
        pod.kill()
