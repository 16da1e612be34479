"""COMFYUI_NODES entries and workflow metadata → NodeRefs; archives checked before unpacking."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from ignition.errors import UnsafeArchiveError
from ignition.place.packs import unpack_archive
from ignition.spec.nodes import parse_node_specs
from ignition.spec.workflow_packs import read_workflow_packs

GH = "https://github.com"


def test_every_entry_form() -> None:
    parsed = parse_node_specs(
        "comfyui-impact-pack, comfyui-kjnodes@v1.2.3\n"
        "https://github.com/o/r.git@v1.0 o/other@main  https://git.example/x/y",
        github_endpoint=GH,
    )
    assert not parsed.errors
    assert [(r.kind, r.name, r.version) for r in parsed.refs] == [
        ("registry", "comfyui-impact-pack", None),
        ("registry", "comfyui-kjnodes", "1.2.3"),
        ("git", "https://github.com/o/r.git", "v1.0"),
        ("git", "https://github.com/o/other", "main"),
        ("git", "https://git.example/x/y", None),
    ]


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ("pack@1.2", "neither X.Y.Z nor a git commit"),
        ("o/r@--upload-pack=evil", "not a git tag"),
        ("https://github.com/o/..", "not a git repository URL"),
        ("-rf", "not a registry id"),
    ],
)
def test_bad_entries_are_named_and_the_rest_kept(entry: str, says: str) -> None:
    parsed = parse_node_specs(f"good-pack, {entry}", github_endpoint=GH)
    assert [r.name for r in parsed.refs] == ["good-pack"]
    assert len(parsed.errors) == 1 and says in str(parsed.errors[0])
    assert parsed.errors[0].entry == entry


def test_duplicates_are_reported_once() -> None:
    parsed = parse_node_specs("pack, pack@1.0.0", github_endpoint=GH)
    assert len(parsed.refs) == 1 and parsed.errors[0].code == "IGN201"


def test_legacy_node_versions_and_api_format() -> None:
    versions = {"comfy-core": "v0.3.8", "comfyui-easy-use": "1.2.5", "ace-step": "06f751d6a1b2"}
    legacy = {"nodes": [{"type": "Foo"}], "extra": {"node_versions": versions}}
    found = read_workflow_packs(json.dumps(legacy), origin="w", github_endpoint=GH)
    assert [(r.name, r.version) for r in found.refs] == [
        ("comfyui-easy-use", "1.2.5"),
        ("ace-step", "06f751d6a1b2"),
    ]
    assert found.classes == []  # legacy metadata: the classes are not guessed
    api = {"1": {"class_type": "KSampler", "inputs": {}}, "2": {"class_type": "X", "inputs": {}}}
    assert read_workflow_packs(json.dumps(api), origin="a", github_endpoint=GH).classes == ["X"]


def test_unstamped_workflow_classes_are_guessed_stamped_ones_are_not() -> None:
    bare = {"nodes": [{"type": "KSampler"}, {"type": "Mystery"}, {"type": "Note"}]}
    assert read_workflow_packs(json.dumps(bare), origin="w", github_endpoint=GH).classes == [
        "Mystery"
    ]
    stamped = {"nodes": [{"type": "KSampler", "properties": {"cnr_id": "comfy-core"}},
                         {"type": "NewCoreNode"}]}  # fmt: skip
    found = read_workflow_packs(json.dumps(stamped), origin="w", github_endpoint=GH)
    assert found.refs == [] and found.classes == []


def _tar(tmp_path: Path, member: tarfile.TarInfo) -> Path:
    path = tmp_path / "pack.tar.gz"
    with tarfile.open(path, "w:gz") as bundle:
        bundle.addfile(member, io.BytesIO(b"x" * member.size))
    return path


@pytest.mark.parametrize(
    ("kind", "name", "link"),
    [
        (tarfile.SYMTYPE, "inside/link", "../../outside"),
        (tarfile.SYMTYPE, "abs", "/etc/passwd"),
        (tarfile.LNKTYPE, "hard", "../outside"),
        (tarfile.REGTYPE, "/abs/file", ""),
    ],
)
def test_tar_entries_that_leave_the_pack_are_refused(
    tmp_path: Path, kind: bytes, name: str, link: str
) -> None:
    member = tarfile.TarInfo(name)
    member.type, member.linkname = kind, link
    with pytest.raises(UnsafeArchiveError):
        unpack_archive(_tar(tmp_path, member), tmp_path / "pack")
    assert not list((tmp_path / "pack").iterdir())


def test_a_link_inside_the_pack_is_fine(tmp_path: Path) -> None:
    member = tarfile.TarInfo("sub/link")
    member.type, member.linkname = tarfile.SYMTYPE, "../README"
    assert unpack_archive(_tar(tmp_path, member), tmp_path / "pack") == ["sub/link"]
