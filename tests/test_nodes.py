"""Node packs end to end: fake registry, real git over smart HTTP, real uv into a real venv."""

from __future__ import annotations

import asyncio
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fakes.git_server import GitServer, git
from fakes.registry import node_pack_files
from fakes.wheels import installed_version
from ignition.nodes_pipeline import provision_nodes
from ignition.place.packs import LOCK_NAME, RECORD_NAME, read_record
from ignition.report import ProvisionReport
from nodes_env import TORCH, NodeWorld, by_name, wheel_index_fixture, world_fixture

__all__ = ["wheel_index_fixture", "world_fixture"]  # fixtures, used by name

pytestmark = pytest.mark.timeout(120)


def test_registry_packs_pinned_and_unpinned(world: NodeWorld) -> None:
    world.registry.publish("pack-a", "1.0.0", node_pack_files("PackA", requirements="nodelib-a\n"))
    world.registry.publish("pack-a", "1.1.0", node_pack_files("PackA", marker="1.1"))
    world.registry.publish("pack-b", "2.0.0", node_pack_files("PackB", marker="2.0"))
    world.registry.publish("pack-b", "2.1.0", node_pack_files("PackB", marker="2.1"))

    report = world.provision("pack-a@1.0.0, pack-b")

    assert report.ok, [p.to_json() for p in report.packs]
    packs = by_name(report)
    assert (packs["pack-a@1.0.0"].version, packs["pack-b"].version) == ("1.0.0", "2.1.0")
    a = world.custom_nodes / "pack-a"
    # ComfyUI-Manager's layout: custom_nodes/<id> with .tracking listing the archive's names.
    assert set((a / ".tracking").read_text().split("\n")) >= {"__init__.py", "pyproject.toml"}
    assert "MARKER = '2.1'" in (world.custom_nodes / "pack-b" / "__init__.py").read_text()
    record = read_record(a)
    assert record is not None and record.version == "1.0.0" and record.archive_sha256
    assert installed_version(world.real_python, "nodelib-a") == "1.0.0"
    assert world.registry.storage.counters.requests  # fetched from the storage host…
    assert not world.registry.storage.counters.authorization_seen  # …with no credential
    assert not (world.custom_nodes / ".ignition-staging.disabled").exists()


def test_git_pack_at_a_commit_and_a_tag(world: NodeWorld) -> None:
    first = node_pack_files("GitNode", marker="first")
    second = node_pack_files("GitNode", marker="second")
    shas = world.git.make_repo("owner/git-pack", [first, second], tags={0: "v1.0"})
    tagged = world.git.make_repo("owner/tagged", [first, second], tags={0: "v1.0"})

    report = world.provision(f"owner/git-pack@{shas[0]}, {world.git.url}/owner/tagged@v1.0")

    assert report.ok, [p.to_json() for p in report.packs]
    for folder, sha in (("git-pack", shas[0]), ("tagged", tagged[0])):
        clone = world.custom_nodes / folder
        assert "MARKER = 'first'" in (clone / "__init__.py").read_text()
        assert git("rev-parse", "HEAD", cwd=clone) == sha
        assert git("status", "--porcelain", cwd=clone) == ""  # the record is excluded
        assert git("remote", "get-url", "origin", cwd=clone).endswith(f"/owner/{folder}")


def test_workflow_names_three_packs_one_in_a_subgraph(world: NodeWorld) -> None:
    world.registry.publish("pack-a", "1.0.0", node_pack_files("PackA"))
    world.registry.publish("pack-a", "1.2.0", node_pack_files("PackA"))
    world.registry.publish("inner-pack", "0.3.0", node_pack_files("InnerNode"))
    shas = world.git.make_repo("someone/aux-pack", [node_pack_files("AuxNode")])
    subgraph_id = "4b0c2c8e-6d0f-4f8e-9b7e-0a1b2c3d4e5f"
    aux = {"aux_id": "someone/aux-pack", "ver": shas[0]}
    inner = {"cnr_id": "inner-pack", "ver": "0.3.0"}
    workflow = {
        "nodes": [
            {"id": 1, "type": "KSampler", "properties": {"cnr_id": "comfy-core", "ver": "0.3.1"}},
            {"id": 2, "type": "PackA", "properties": {"cnr_id": "pack-a", "ver": "1.0.0"}},
            {"id": 3, "type": "AuxNode", "properties": aux},
            {"id": 4, "type": subgraph_id},
        ],
        "definitions": {
            "subgraphs": [
                {
                    "id": subgraph_id,
                    "nodes": [
                        {"id": 1, "type": "InnerNode", "properties": inner}
                    ],
                }
            ]
        },
    }  # fmt: skip

    report = world.provision(workflows=world.workflow("wf.json", workflow))

    assert report.ok, [p.to_json() for p in report.packs]
    assert {p.folder for p in report.packs} == {"pack-a", "aux-pack", "inner-pack"}
    assert by_name(report)["pack-a@1.0.0"].version == "1.0.0"  # the workflow's, not the latest
    assert git("rev-parse", "HEAD", cwd=world.custom_nodes / "aux-pack") == shas[0]


def test_api_workflow_packs_are_guessed_from_classes(world: NodeWorld) -> None:
    world.registry.publish(
        "guessed-pack", "1.0.0", node_pack_files("GuessedNode"), classes=("GuessedNode",)
    )
    prompt = {
        "1": {"class_type": "KSampler", "inputs": {}},
        "2": {"class_type": "GuessedNode", "inputs": {}},
        "3": {"class_type": "NobodyHasThis", "inputs": {}},
    }

    report = world.provision(workflows=world.workflow("api.json", prompt))

    packs = {p.folder or p.name: p for p in report.packs}
    assert packs["guessed-pack"].guess and packs["guessed-pack"].status == "ok"
    assert packs["NobodyHasThis"].status == "missing"
    assert "missing, no source known" in (packs["NobodyHasThis"].error or "")
    assert "KSampler" not in packs
    assert not report.ok
    assert read_record(world.custom_nodes / "guessed-pack").classes == ("GuessedNode",)


def _zip(entries: list[tuple[zipfile.ZipInfo | str, str]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for info, content in entries:
            bundle.writestr(info, content)
    return buffer.getvalue()


def test_zip_slip_and_link_out_archives_fail_the_pack_only(world: NodeWorld) -> None:
    link = zipfile.ZipInfo("escape")
    link.external_attr = 0o120777 << 16  # a symbolic link
    world.registry.publish("slip", "1.0.0", {})
    world.registry.packs["slip"].versions[0].archive = _zip(
        [("__init__.py", ""), ("../../outside.py", "pwned")]
    )
    world.registry.publish("linky", "1.0.0", {})
    world.registry.packs["linky"].versions[0].archive = _zip(
        [("__init__.py", ""), (link, "../../../etc")]
    )
    world.registry.publish("fine", "1.0.0", node_pack_files("Fine"))

    report = world.provision("slip linky fine")

    packs = by_name(report)
    assert packs["slip"].code == packs["linky"].code == "IGN501"
    assert "outside the pack" in packs["slip"].error
    assert "links out" in packs["linky"].error
    assert packs["fine"].status == "ok"
    assert not (world.workspace / "outside.py").exists()
    assert not (world.workspace / "ComfyUI" / "outside.py").exists()
    assert [p.name for p in world.custom_nodes.iterdir()] == ["fine"]  # no staging left


@pytest.mark.parametrize("omit_status", [False, True])
def test_banned_version_is_refused_and_never_downloaded(
    world: NodeWorld, omit_status: bool
) -> None:
    world.registry.omit_status = omit_status
    world.registry.publish(
        "shady", "1.0.0", node_pack_files("Shady"), status="NodeVersionStatusBanned",
        reason="contains malware",
    )  # fmt: skip

    report = world.provision("shady@1.0.0")

    pack = by_name(report)["shady@1.0.0"]
    assert pack.status == "failed" and pack.code == "IGN311"
    assert "banned" in pack.error and "contains malware" in pack.error
    assert not world.registry.storage.counters.requests  # the archive was never asked for
    assert not (world.custom_nodes / "shady").exists()
    asked = world.registry.counters.requests
    assert ("/nodes/shady/versions/1.0.0" in asked) == omit_status


def test_unknown_pack_names_close_ones(world: NodeWorld) -> None:
    world.registry.publish("comfyui-impact-pack", "8.8.1", node_pack_files("Impact"))

    report = world.provision("comfyui-impact-pak")

    pack = by_name(report)["comfyui-impact-pak"]
    assert pack.code == "IGN310" and "comfyui-impact-pack" in pack.error


def test_torch_conflict_fails_that_pack_and_leaves_torch_alone(world: NodeWorld) -> None:
    world.registry.publish("calm", "1.0.0", node_pack_files("Calm", requirements="nodelib-b\n"))
    # `greedy` needs torch>=9: without the pin, uv would replace the installed torch.
    world.registry.publish("greedy-pack", "1.0.0", node_pack_files("G", requirements="greedy\n"))
    world.registry.publish("other", "1.0.0", node_pack_files("Other", requirements="nodelib-c\n"))

    report = world.provision("calm greedy-pack other")

    packs = by_name(report)
    assert packs["calm"].status == packs["other"].status == "ok"
    greedy = packs["greedy-pack"]
    assert greedy.status == "failed" and greedy.code == "IGN511", greedy.error
    assert "greedy-pack" in greedy.error and "greedy" in greedy.error
    assert f"torch=={TORCH}" in greedy.error
    assert installed_version(world.real_python, "torch") == TORCH
    assert installed_version(world.real_python, "nodelib-b") == "1.0.0"
    assert installed_version(world.real_python, "nodelib-c") == "1.0.0"
    assert not (world.custom_nodes / "greedy-pack").exists()


def test_warm_restart_needs_no_network_and_no_pip(world: NodeWorld) -> None:
    world.registry.publish("pack-a", "1.0.0", node_pack_files("PackA", requirements="nodelib-a\n"))
    world.registry.publish("pack-b", "1.0.0", node_pack_files("PackB", requirements="nodelib-d\n"))
    world.registry.publish("guessed", "1.0.0", node_pack_files("Guessed"), classes=("Guessed",))
    shas = world.git.make_repo("o/gitted", [node_pack_files("Gitted")])
    prompt = world.workflow("api.json", {"1": {"class_type": "Guessed", "inputs": {}}})
    nodes = f"pack-a@1.0.0 pack-b o/gitted@{shas[0]}"
    assert world.provision(nodes, prompt).ok
    registry_before, git_before = world.registry.total_requests, world.git.total_requests
    runs_before = len(world.python_runs())
    assert runs_before > 0  # the cold start did run the interpreter (uv, pip, versions)

    again = world.provision(nodes, prompt)

    assert again.ok and {p.status for p in again.packs} == {"skipped"}
    assert world.registry.total_requests == registry_before
    assert world.git.total_requests == git_before
    assert len(world.python_runs()) == runs_before  # neither uv nor pip nor install.py ran


def test_pack_changed_to_another_version_is_replaced(world: NodeWorld) -> None:
    world.registry.publish(
        "pack-a", "1.0.0", {**node_pack_files("PackA", marker="one"), "old.py": ""}
    )
    world.registry.publish("pack-a", "1.1.0", node_pack_files("PackA", marker="two"))
    assert world.provision("pack-a@1.0.0").ok

    report = world.provision("pack-a@1.1.0")

    assert report.ok and by_name(report)["pack-a@1.1.0"].status == "ok"
    pack = world.custom_nodes / "pack-a"
    assert "MARKER = 'two'" in (pack / "__init__.py").read_text()
    assert not (pack / "old.py").exists()
    assert json.loads((pack / RECORD_NAME).read_text())["version"] == "1.1.0"
    assert [p.name for p in world.custom_nodes.iterdir()] == ["pack-a"]


def test_hand_installed_pack_is_left_alone(world: NodeWorld) -> None:
    world.registry.publish("mine", "1.0.0", node_pack_files("Mine"))
    mine = world.custom_nodes / "mine"
    mine.mkdir(parents=True)
    (mine / "__init__.py").write_text("# by hand\n")

    report = world.provision("mine")

    assert by_name(report)["mine"].status == "skipped"
    assert (mine / "__init__.py").read_text() == "# by hand\n"
    assert not (mine / RECORD_NAME).exists()


def test_dry_run_resolves_and_installs_nothing(world: NodeWorld, tmp_path: Path) -> None:
    world.registry.publish("pack-a", "1.0.0", node_pack_files("PackA"))

    report = world.provision("pack-a", dry_run=True)

    pack = by_name(report)["pack-a"]
    assert (pack.status, pack.version) == ("planned", "1.0.0")
    assert not (world.custom_nodes / "pack-a").exists()
    assert not world.registry.storage.counters.requests


def test_github_token_goes_only_to_the_github_host(world: NodeWorld) -> None:
    world.git.make_repo("owner/private-pack", [node_pack_files("Private")])
    world.git.private["owner/private-pack"] = "ghp-secret-0123"
    elsewhere = GitServer(world.tmp / "elsewhere", host="127.0.0.2").start()
    try:
        elsewhere.make_repo("x/public-pack", [node_pack_files("Public")])
        nodes = f"owner/private-pack {elsewhere.url}/x/public-pack"

        without = world.provision(nodes)
        assert "GITHUB_TOKEN" in (by_name(without)["owner/private-pack"].error or "")

        report = world.provision(nodes, github_token="ghp-secret-0123")

        assert report.ok, [p.to_json() for p in report.packs]
        assert world.git.authorization_seen and not elsewhere.authorization_seen
        assert "ghp-secret" not in json.dumps(report.to_json())
        for pack in world.custom_nodes.glob("*/.git/config"):
            assert "ghp-secret" not in pack.read_text()
    finally:
        elsewhere.stop()


def test_download_cli_lists_packs_and_exits_non_zero_on_failure(world: NodeWorld) -> None:
    world.registry.publish("pack-a", "1.0.0", node_pack_files("PackA"))
    env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src"),
        "WORKSPACE": str(world.workspace),
        "IGNITION_RUN_DIR": str(world.tmp / "run"),
        "COMFY_REGISTRY_ENDPOINT": world.registry.url,
        "COMFYUI_PYTHON": str(world.python),
    }

    def download(*args: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "ignition", "download", *args]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)

    plan = download("--nodes", "pack-a", "--dry-run", "--json")
    assert plan.returncode == 0, plan.stderr
    (pack,) = json.loads(plan.stdout)["packs"]
    assert (pack["status"], pack["source"], pack["version"]) == ("planned", "registry", "1.0.0")
    failed = download("--nodes", "pack-a no-such-pack")
    assert failed.returncode == 1
    assert "no-such-pack" in failed.stdout and "Traceback" not in failed.stderr
    assert (world.custom_nodes / "pack-a" / "__init__.py").is_file()


def test_install_py_runs_in_the_pack_and_a_failing_one_keeps_the_old_version(
    world: NodeWorld,
) -> None:
    script = "import os, sys; open('installed-by', 'w').write(sys.executable)\n"
    world.registry.publish("scripted", "1.0.0", {**node_pack_files("S"), "install.py": script})
    world.registry.publish(
        "scripted",
        "2.0.0",
        {**node_pack_files("S", marker="2"), "install.py": "raise SystemExit(3)"},
    )
    assert world.provision("scripted@1.0.0").ok
    pack = world.custom_nodes / "scripted"
    assert (pack / "installed-by").read_text().endswith("/venv/bin/python")

    report = world.provision("scripted@2.0.0")

    outcome = by_name(report)["scripted@2.0.0"]
    assert outcome.status == "failed" and "install.py failed (exit 3)" in outcome.error
    assert read_record(pack).version == "1.0.0"  # the old version is back, whole
    assert "MARKER = ''" in (pack / "__init__.py").read_text()


def test_two_provisioners_at_once_install_each_pack_once(world: NodeWorld) -> None:
    world.registry.publish("pack-a", "1.0.0", node_pack_files("PackA", requirements="nodelib-a\n"))
    settings = world.settings("pack-a@1.0.0")

    async def both() -> list[ProvisionReport]:
        return list(await asyncio.gather(provision_nodes(settings), provision_nodes(settings)))

    reports = asyncio.run(both())

    assert all(report.ok for report in reports)
    assert sorted(r.packs[0].status for r in reports) == ["ok", "skipped"]
    assert world.registry.counters.requests["/nodes/pack-a/install"] == 1
    assert not (world.custom_nodes / LOCK_NAME).exists()
