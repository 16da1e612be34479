"""A manifest's `nodes` and `python` through the real node pipeline, and ignition.lock pinning
them: fake registry, real git over smart HTTP, real uv against a local wheel index."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import uv

from fakes.git_server import git
from fakes.registry import node_pack_files, zip_files
from fakes.wheels import installed_version
from ignition.nodes_pipeline import provision_nodes
from ignition.pin.build import build_lock
from ignition.pin.check import lock_differences
from ignition.pin.lockfile import LOCK_NAME, parse_lock
from ignition.pin.running import Snapshot, snapshot
from ignition.pipeline import open_client
from ignition.place.packs import read_record
from ignition.report import ProvisionReport
from ignition.spec.manifest import load_manifest
from nodes_env import TORCH, NodeWorld, by_name, wheel_index_fixture, world_fixture

__all__ = ["wheel_index_fixture", "world_fixture"]  # fixtures, used by name

pytestmark = pytest.mark.timeout(180)


def publish(world: NodeWorld) -> tuple[Path, list[str]]:
    """A registry pack, a git pack at a tag (its requirement needs torch) and a manifest naming
    both and one Python package; the git pack's commit shas."""
    world.registry.publish("pack-a", "1.0.0", node_pack_files("PackA", requirements="nodelib-a\n"))
    files = [
        node_pack_files("GitNode", marker="first", requirements="nodelib-b\n"),
        node_pack_files("GitNode", marker="second", requirements="nodelib-b\n"),
    ]
    shas = world.git.make_repo("owner/git-pack", files, tags={0: "v1.0"})
    manifest = world.tmp / "project" / "ignition.yaml"
    manifest.parent.mkdir()
    manifest.write_text(
        "version: 1\n"
        f"nodes: ['pack-a@1.0.0', '{world.git.url}/owner/git-pack@v1.0']\n"
        "python: ['nodelib-c']\n"
    )
    return manifest, shas


def lock_now(world: NodeWorld, manifest: Path) -> tuple[str | None, ProvisionReport]:
    """`ignition lock`'s core; writes the lock beside the manifest when it could be made."""

    settings = world.settings()

    async def build() -> tuple[str | None, ProvisionReport]:
        async with open_client(settings) as client:
            parsed = await load_manifest(client, str(manifest))
        result = await build_lock(settings, parsed)
        return (result.lock.dumps() if result.lock else None), result.report

    text, report = asyncio.run(build())
    if text is not None:
        (manifest.parent / LOCK_NAME).write_text(text)
    return text, report


def wheel_hash(world: NodeWorld, name: str, version: str = "1.0.0") -> str:
    wheel = world.index / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    return "sha256:" + hashlib.sha256(wheel.read_bytes()).hexdigest()


def provision(world: NodeWorld, manifest: Path, workspace: str, nodes: str = "") -> ProvisionReport:
    settings = world.settings(nodes, ignition_manifest=str(manifest))
    settings = settings.model_copy(update={"workspace": world.tmp / workspace})
    return asyncio.run(provision_nodes(settings))


def test_manifest_nodes_and_python_install_with_the_env_list(world: NodeWorld) -> None:
    manifest, shas = publish(world)
    world.registry.publish("pack-b", "2.0.0", node_pack_files("PackB", requirements="nodelib-d\n"))
    manifest.write_text(manifest.read_text().replace("['nodelib-c']", "['nodelib-c', 'greedy']"))

    # pack-a in both lists is one entry; greedy (torch>=9) fails alone, the rest install.
    report = provision(world, manifest, "workspace", "pack-a@1.0.0, pack-b")

    packs = by_name(report)
    assert sorted(p.status for p in report.packs if p.name == "pack-a@1.0.0") == ["duplicate", "ok"]
    assert packs["pack-b"].status == "ok"
    assert packs[f"{world.git.url}/owner/git-pack@v1.0"].commit == shas[0]
    assert packs["nodelib-c"].status == "ok"
    assert packs["greedy"].status == "failed"
    assert "greedy" in (packs["greedy"].error or "") and f"torch=={TORCH}" in packs["greedy"].error
    for name in ("nodelib-a", "nodelib-b", "nodelib-c", "nodelib-d"):
        assert installed_version(world.real_python, name) == "1.0.0", name
    assert installed_version(world.real_python, "torch") == TORCH
    assert installed_version(world.real_python, "greedy") is None


def test_the_lock_pins_packs_and_python_packages(world: NodeWorld) -> None:
    manifest, shas = publish(world)

    text, report = lock_now(world, manifest)

    assert text is not None, [(p.name, p.status, p.error) for p in report.packs]
    lock = json.loads(text)
    packs = {pack["folder"]: pack for pack in lock["packs"]}
    archive = world.registry.packs["pack-a"].versions[0].archive
    assert packs["pack-a"]["archive_sha256"] == hashlib.sha256(archive).hexdigest()
    assert (packs["pack-a"]["version"], packs["pack-a"]["commit"]) == ("1.0.0", None)
    assert packs["git-pack"]["commit"] == shas[0]
    assert packs["git-pack"]["version"] == "v1.0" and packs["git-pack"]["archive_sha256"] is None
    python = lock["python"]
    assert python["constraints"]["torch"] == TORCH
    assert {p["name"]: (p["version"], p["hashes"]) for p in python["packages"]} == {
        name: ("1.0.0", [wheel_hash(world, name)])
        for name in ("nodelib-a", "nodelib-b", "nodelib-c")
    }  # torch (nodelib-b needs it) is the image's: resolved against, never locked
    assert lock["manifest"]["nodes"] == sorted(
        ["pack-a@1.0.0", f"{world.git.url}/owner/git-pack@v1.0"]
    )
    assert lock["manifest"]["python"] == ["nodelib-c"]
    assert not (world.custom_nodes).exists()  # locking installs nothing
    assert installed_version(world.real_python, "nodelib-a") is None
    again, _ = lock_now(world, manifest)
    assert again == text
    assert parse_lock(text, origin="lock").dumps() == text


def test_a_locked_start_installs_exactly_the_lock_and_refuses_what_moved(
    world: NodeWorld,
) -> None:
    manifest, shas = publish(world)
    assert lock_now(world, manifest)[0] is not None
    # Newer things upstream that an unlocked start would take: none of them may be used.
    world.registry.publish("pack-a", "1.1.0", node_pack_files("PackA", marker="1.1"))

    first = provision(world, manifest, "fresh")

    assert first.ok, [p.to_json() for p in first.packs]
    custom_nodes = world.tmp / "fresh" / "ComfyUI" / "custom_nodes"
    record = read_record(custom_nodes / "pack-a")
    assert record is not None and record.version == "1.0.0"
    assert git("rev-parse", "HEAD", cwd=custom_nodes / "git-pack") == shas[0]
    for name in ("nodelib-a", "nodelib-b", "nodelib-c"):
        assert installed_version(world.real_python, name) == "1.0.0"
    assert by_name(first)["python packages of the lock"].status == "ok"

    # Upstream moves: the tag now points at the second commit, and the registry serves other
    # bytes for pack-a 1.0.0. A fresh locked start keeps the commit and refuses the archive.
    bare = world.git.root / "owner" / "git-pack"
    git("tag", "-f", "-a", "v1.0", "-m", "moved", shas[1], cwd=bare)
    world.registry.packs["pack-a"].versions[0].archive = zip_files(
        node_pack_files("PackA", marker="tampered", requirements="nodelib-a\n")
    )
    second = provision(world, manifest, "again")

    packs = by_name(second)
    failed = packs["pack-a@1.0.0"]
    assert failed.status == "failed" and "changed since locked" in (failed.error or "")
    locked = {
        p["folder"]: p for p in json.loads((manifest.parent / LOCK_NAME).read_text())["packs"]
    }
    assert locked["pack-a"]["archive_sha256"] in failed.error
    tampered = world.registry.packs["pack-a"].versions[0].archive
    assert hashlib.sha256(tampered).hexdigest() in failed.error
    again_nodes = world.tmp / "again" / "ComfyUI" / "custom_nodes"
    assert not (again_nodes / "pack-a").exists()
    assert git("rev-parse", "HEAD", cwd=again_nodes / "git-pack") == shas[0]
    assert "MARKER = 'first'" in (again_nodes / "git-pack" / "__init__.py").read_text()
    assert packs[f"{world.git.url}/owner/git-pack@v1.0"].status == "ok"


def test_a_locked_start_installs_python_packages_only_with_their_locked_hashes(
    world: NodeWorld,
) -> None:
    manifest, _ = publish(world)
    assert lock_now(world, manifest)[0] is not None
    path = manifest.parent / LOCK_NAME
    lock = json.loads(path.read_text())
    nodelib_c = next(p for p in lock["python"]["packages"] if p["name"] == "nodelib-c")
    nodelib_c["hashes"] = ["sha256:" + "0" * 64]  # not the wheel the index serves
    path.write_text(json.dumps(lock))

    report = provision(world, manifest, "fresh")

    python = by_name(report)["python packages of the lock"]
    assert python.status == "failed" and "nodelib-c" in (python.error or "")
    assert installed_version(world.real_python, "nodelib-c") is None
    # The locked packs would run without their packages: they are not put in place either.
    assert by_name(report)["pack-a@1.0.0"].status == "failed"
    assert not (world.tmp / "fresh" / "ComfyUI" / "custom_nodes" / "pack-a").exists()


def test_a_locked_start_says_when_the_interpreter_has_another_torch(world: NodeWorld) -> None:
    manifest, _ = publish(world)
    assert lock_now(world, manifest)[0] is not None
    path = manifest.parent / LOCK_NAME
    lock = json.loads(path.read_text())
    lock["python"]["constraints"]["torch"] = "2.4.1"  # as if locked on another image
    path.write_text(json.dumps(lock))

    python = by_name(provision(world, manifest, "fresh"))["python packages of the lock"]

    assert python.status == "ok"
    assert python.warnings == [f"locked against torch==2.4.1; this interpreter has torch=={TORCH}"]


def test_a_hostile_pack_record_in_a_lock_fails_that_pack_alone(world: NodeWorld) -> None:
    manifest, _ = publish(world)
    assert lock_now(world, manifest)[0] is not None
    path = manifest.parent / LOCK_NAME
    lock = json.loads(path.read_text())
    git_pack = next(p for p in lock["packs"] if p["source"] == "git")
    git_pack["ref"] = f"ext::sh -c touch% {world.tmp}/pwned"
    path.write_text(json.dumps(lock))

    report = provision(world, manifest, "fresh")

    hostile = by_name(report)[git_pack["name"]]
    assert hostile.status == "failed" and "is not a clone URL" in (hostile.error or "")
    assert by_name(report)["pack-a@1.0.0"].status == "ok"
    assert not (world.tmp / "pwned").exists()


def test_check_sees_edited_nodes_and_python(world: NodeWorld) -> None:
    manifest, _ = publish(world)
    assert lock_now(world, manifest)[0] is not None
    lock = str(manifest.parent / LOCK_NAME)

    def check() -> list[str]:
        return asyncio.run(lock_differences(world.settings(), str(manifest), lock))

    assert check() == []
    manifest.write_text(
        manifest.read_text()
        .replace("'pack-a@1.0.0', ", "'pack-a@1.1.0', ")
        .replace("['nodelib-c']", "['nodelib-c', 'nodelib-d']")
    )
    assert check() == [
        "nodes: 'pack-a@1.1.0' added, not locked",
        "nodes: 'pack-a@1.0.0' removed, still locked",
        "python: 'nodelib-d' added, not locked",
    ]


def test_from_running_locks_the_packs_and_packages_of_a_hand_made_workspace(
    world: NodeWorld,
) -> None:
    world.registry.publish("pack-a", "1.0.0", node_pack_files("PackA", requirements="nodelib-a\n"))
    shas = world.git.make_repo("owner/hand-pack", [node_pack_files("HandNode"), {"x.py": "x=1"}])
    first = world.provision("pack-a@1.0.0")  # Ignition's install: recorded, baseline written
    assert first.ok
    # By hand, as ComfyUI-Manager or a person would: a clone at an older commit, a folder of
    # unknown origin, and a package pip-installed into ComfyUI's environment.
    clone = world.custom_nodes / "hand-pack"
    git("clone", "-q", f"{world.git.url}/owner/hand-pack", str(clone), cwd=world.tmp)
    git("checkout", "-q", "--detach", shas[0], cwd=clone)
    (world.custom_nodes / "mystery").mkdir()
    (world.custom_nodes / "mystery" / "__init__.py").write_text("")
    install = [
        uv.find_uv_bin(),
        "pip",
        "install",
        "-q",
        "--python",
        str(world.real_python),
        "nodelib-d",
    ]
    subprocess.run(install, check=True)
    origin = world.tmp / "snapshot" / "ignition.yaml"

    async def take() -> Snapshot:
        async with open_client(world.settings()) as client:
            return await snapshot(client, world.settings(), origin=str(origin))

    taken = asyncio.run(take())

    hand = f"{world.git.url}/owner/hand-pack@{shas[0]}"
    assert taken.manifest.nodes == (hand, "pack-a@1.0.0")  # by folder
    assert taken.manifest.python == ("nodelib-a==1.0.0", "nodelib-d==1.0.0")
    assert any(line.startswith("custom_nodes/mystery:") for line in taken.unlocked)
    packs = {pack.folder: pack for pack in taken.lock.packs}
    assert packs["hand-pack"].commit == shas[0]
    assert (
        packs["pack-a"].archive_sha256 == read_record(world.custom_nodes / "pack-a").archive_sha256
    )
    assert {p.name: p.version for p in taken.lock.python.packages} == {
        "nodelib-a": "1.0.0",
        "nodelib-d": "1.0.0",
    }
    # Written out, the pair reproduces the packs on a fresh workspace, at the same commit.
    origin.parent.mkdir()
    origin.write_text(taken.manifest_text())
    (origin.parent / LOCK_NAME).write_text(taken.lock.dumps())
    report = provision(world, origin, "fresh")
    assert report.ok, [(p.name, p.error) for p in report.packs]
    fresh = world.tmp / "fresh" / "ComfyUI" / "custom_nodes"
    assert git("rev-parse", "HEAD", cwd=fresh / "hand-pack") == shas[0]
    assert (fresh / "pack-a" / "__init__.py").is_file()
