"""ignition.lock against the fake hubs: what it pins is what they serve, a locked start takes
exactly those bytes, `--check` sees edits, `--from-running` reproduces a pod."""

import json
import shutil
from pathlib import Path
from typing import Any

from fakes.civitai import CivitaiFile
from fakes.content import model_bytes, sha256
from fakes.services import Fakes
from helpers import by_name, files_under, provision_now, serve_catalog
from ignition.place.install import sha256_file
from test_download_cli import HF_GRANTED, ignition

SMALL = "o/tiny/tiny.safetensors"  # served as a plain file: no hash published anywhere


def publish(fakes: Fakes) -> dict[str, bytes]:
    """Three sources of every kind, and a manifest (with a workflow) naming them."""
    served = {"vae/ae.safetensors": serve_catalog(fakes, "ae")["ae"]}
    version = fakes.civitai.add(128713)
    served["checkpoints/model_128713.safetensors"] = version.files[0].data
    tiny = model_bytes("tiny", data_bytes=512)
    fakes.hf.add("o/tiny", {"tiny.safetensors": tiny}, small=frozenset({"tiny.safetensors"}))
    served["upscale_models/tiny.safetensors"] = tiny
    lora = model_bytes("lora")
    fakes.hf.add("o/lora", {"l.safetensors": lora})
    served["loras/l.safetensors"] = lora
    project = fakes.tmp_path / "project"
    (project / "workflows").mkdir(parents=True)
    write_workflow(project / "workflows" / "portrait.json", "l.safetensors")
    (project / "ignition.yaml").write_text(
        "version: 1\n"
        "models:\n"
        "  civitai: [128713]\n"
        f"  huggingface: [ae, '{SMALL}:upscale_models']\n"
        "workflows: [workflows/portrait.json]\n"
    )
    return served


def write_workflow(path: Path, lora: str) -> None:
    node = {
        "type": "LoraLoader",
        "widgets_values": [lora, 1, 1],
        "properties": {
            "models": [
                {
                    "name": lora,
                    "directory": "loras",
                    "url": f"https://huggingface.co/o/lora/resolve/main/{lora}",
                }
            ]
        },
    }
    path.write_text(json.dumps({"nodes": [node]}))


def lock_cli(fakes: Fakes, *args: str, **env: str) -> Any:
    return ignition(fakes, "lock", *args, HF_TOKEN=HF_GRANTED, **env)


def test_the_lock_pins_what_the_sources_serve_fetching_only_the_unhashed(fakes: Fakes) -> None:
    served = publish(fakes)
    manifest = fakes.tmp_path / "project" / "ignition.yaml"

    result = lock_cli(fakes, str(manifest))

    assert result.returncode == 0, result.stdout + result.stderr
    text = (manifest.parent / "ignition.lock").read_text()
    lock = json.loads(text)
    pinned = {f"{m['folder']}/{m['filename']}": m for m in lock["models"]}
    assert sorted(pinned) == sorted(served)
    for relative, data in served.items():
        assert pinned[relative]["sha256"] == sha256(data)
        assert pinned[relative]["size"] == len(data)
    assert lock["manifest"]["civitai"] == ["128713"]
    assert lock["manifest"]["workflows"] == {
        "workflows/portrait.json": sha256_file(manifest.parent / "workflows" / "portrait.json")
    }
    # Model bytes moved only for the file no API vouches for (and one byte for CivitAI's size).
    assert fakes.storage.counters.bytes_served == 1
    # HEAD (size, hash), GET (no hash published: fetched once), HEAD (the commit to pin).
    assert fakes.hf.counters.requests["/o/tiny/resolve/main/tiny.safetensors"] == 3
    # Hugging Face files are locked at the commit their branch points to now.
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert pinned["loras/l.safetensors"]["url"].endswith(f"/o/lora/resolve/{commit}/l.safetensors")
    assert fakes.civitai.token not in text and HF_GRANTED not in text
    # Deterministic: the same inputs give the same bytes, and the file is left alone.
    again = lock_cli(fakes, str(manifest))
    assert again.returncode == 0
    assert "unchanged" in again.stdout
    assert (manifest.parent / "ignition.lock").read_text() == text
    assert text == json.dumps(lock, indent=2, sort_keys=True) + "\n"


def test_a_locked_start_on_a_fresh_workspace_gives_the_same_tree(fakes: Fakes) -> None:
    served = publish(fakes)
    manifest = fakes.tmp_path / "project" / "ignition.yaml"
    assert lock_cli(fakes, str(manifest)).returncode == 0
    first = provision_now(fakes, ignition_manifest=str(manifest))
    assert first.ok, [o.error for o in first.outcomes]

    fresh = fakes.tmp_path / "fresh"
    report = provision_now(fakes, ignition_manifest=str(manifest), models_dir_override=fresh)

    assert report.ok, [o.error for o in report.outcomes]
    assert files_under(fresh) == files_under(fakes.models_dir) == sorted(served)
    for relative, data in served.items():
        assert (fresh / relative).read_bytes() == data
    assert all("not pinned" not in " ".join(o.warnings) for o in report.outcomes)
    # Warm: everything recorded in place, so a locked start asks no source anything.
    for server in (fakes.hf, fakes.civitai, fakes.storage):
        server.counters.requests.clear()
    warm = provision_now(fakes, ignition_manifest=str(manifest), models_dir_override=fresh)
    assert {o.status for o in warm.outcomes} == {"skipped"}
    assert not (fakes.hf.counters.requests + fakes.civitai.counters.requests)
    assert not fakes.storage.counters.requests


def test_changed_upstream_files_fail_exactly_those_entries_with_both_hashes(fakes: Fakes) -> None:
    served = publish(fakes)
    manifest = fakes.tmp_path / "project" / "ignition.yaml"
    assert lock_cli(fakes, str(manifest)).returncode == 0
    new_checkpoint = model_bytes("civitai-128713-v2")
    fakes.civitai.versions[128713].files[0] = CivitaiFile(
        1287130, "model_128713.safetensors", new_checkpoint
    )
    new_tiny = model_bytes("tiny-v2", data_bytes=512)
    fakes.hf.repos["o/tiny"].files["tiny.safetensors"] = new_tiny
    downloads_before = fakes.civitai.counters.requests["/api/download/models/128713"]

    report = provision_now(fakes, ignition_manifest=str(manifest))

    outcomes = {f"{o.folder}/{o.filename}": o for o in report.outcomes}
    changed = {relative for relative, o in outcomes.items() if o.status == "failed"}
    assert changed == {"checkpoints/model_128713.safetensors", "upscale_models/tiny.safetensors"}
    checkpoint = outcomes["checkpoints/model_128713.safetensors"]
    assert "changed since locked" in (checkpoint.error or "")
    assert sha256(served["checkpoints/model_128713.safetensors"]) in (checkpoint.error or "")
    assert sha256(new_checkpoint) in (checkpoint.error or "")
    assert checkpoint.code == "IGN408"
    tiny = outcomes["upscale_models/tiny.safetensors"]
    assert sha256(new_tiny) in (tiny.error or "") and "changed since locked" in (tiny.error or "")
    # Refused before a byte of the changed checkpoint was fetched; nothing of either placed.
    assert fakes.civitai.counters.requests["/api/download/models/128713"] == downloads_before
    assert files_under(fakes.models_dir) == ["loras/l.safetensors", "vae/ae.safetensors"]


def test_check_says_whether_the_lock_still_matches_the_manifest(fakes: Fakes) -> None:
    publish(fakes)
    fakes.civitai.add(456789, model_type="LORA")
    manifest = fakes.tmp_path / "project" / "ignition.yaml"
    assert lock_cli(fakes, str(manifest)).returncode == 0

    matching = lock_cli(fakes, "--check", str(manifest))
    assert (matching.returncode, matching.stdout.strip()) == (
        0,
        f"{manifest.parent / 'ignition.lock'} matches {manifest}",
    )

    manifest.write_text(manifest.read_text().replace("[128713]", "[128713, '456789:loras']"))
    write_workflow(manifest.parent / "workflows" / "portrait.json", "other.safetensors")
    stale = lock_cli(fakes, "--check", "--json", str(manifest))

    assert stale.returncode == 1
    assert json.loads(stale.stdout)["differences"] == [
        "civitai: '456789:loras' added, not locked",
        "workflows: 'workflows/portrait.json' changed since locked",
    ]


def test_from_running_writes_a_manifest_and_lock_that_reproduce_the_pod(fakes: Fakes) -> None:
    served = publish(fakes)
    pod = fakes.tmp_path / "pod-models"
    made = provision_now(
        fakes,
        civitai="128713",
        hf=f"ae,{SMALL}:upscale_models,o/lora/l.safetensors:loras",
        models_dir_override=pod,
    )
    assert made.ok, [o.error for o in made.outcomes]
    (pod / "loras" / "by-hand.safetensors").write_bytes(model_bytes("by hand"))
    # Fetched by hand (under CivitAI's name), but CivitAI knows the bytes: traced and locked.
    traced = fakes.civitai.add(777, model_type="LORA").files[0].data
    (pod / "loras" / "model_777.safetensors").write_bytes(traced)
    served["loras/model_777.safetensors"] = traced
    out = fakes.tmp_path / "snapshot"

    result = lock_cli(
        fakes,
        "--from-running",
        str(out / "ignition.yaml"),
        IGNITION_MODELS_DIR=str(pod),
    )

    assert result.returncode == 0, result.stderr
    assert "by-hand.safetensors: not downloaded by Ignition and unknown to CivitAI" in (
        result.stderr
    )
    assert "model_777" not in result.stderr
    fresh = fakes.tmp_path / "fresh"
    report = provision_now(
        fakes, ignition_manifest=str(out / "ignition.yaml"), models_dir_override=fresh
    )
    assert report.ok, [o.error for o in report.outcomes]
    assert files_under(fresh) == sorted(served)
    for relative in served:
        assert sha256_file(fresh / relative) == sha256_file(pod / relative)

    # The generated manifest locks to the very same files and bytes, and --check agrees.
    def pinned(path: Path) -> list[tuple[str, str, int, str]]:
        models = json.loads(path.read_text())["models"]
        return [(m["folder"], m["filename"], m["size"], m["sha256"]) for m in models]

    shutil.move(out / "ignition.lock", out / "from-running.lock")
    assert lock_cli(fakes, str(out / "ignition.yaml")).returncode == 0
    assert pinned(out / "ignition.lock") == pinned(out / "from-running.lock")
    assert lock_cli(fakes, "--check", str(out / "ignition.yaml")).returncode == 0


def test_a_lock_that_cannot_be_made_writes_nothing_and_says_why(fakes: Fakes) -> None:
    serve_catalog(fakes, "ae")
    manifest = fakes.tmp_path / "ignition.yaml"
    manifest.write_text("version: 1\nmodels: {civitai: [999], huggingface: [ae]}\n")

    result = lock_cli(fakes, str(manifest))

    assert result.returncode == 1
    assert "no such model version" in result.stdout
    assert not (fakes.tmp_path / "ignition.lock").exists()
    malformed = lock_cli(fakes, str(fakes.tmp_path / "missing.yaml"))
    assert malformed.returncode == 2
    assert malformed.stderr.startswith("error [IGN110]: manifest ")
    assert "Traceback" not in malformed.stderr


def test_a_damaged_lock_fails_the_start_as_one_entry(fakes: Fakes) -> None:
    serve_catalog(fakes, "ae")
    manifest = fakes.tmp_path / "ignition.yaml"
    manifest.write_text("version: 1\nmodels: {huggingface: [ae]}\n")
    (fakes.tmp_path / "ignition.lock").write_text('{"version": 1, "models": [')

    report = provision_now(fakes, hf="ae", ignition_manifest=str(manifest))

    assert [o.code for o in report.outcomes if o.status == "failed"] == ["IGN111"]
    assert by_name(report)["ae"].status == "ok"  # the env list still runs


def test_a_lock_older_than_its_manifest_still_provisions_only_the_locked_set(
    fakes: Fakes, capsys: Any
) -> None:
    served = publish(fakes)
    fakes.civitai.add(456789, model_type="LORA")
    manifest = fakes.tmp_path / "project" / "ignition.yaml"
    assert lock_cli(fakes, str(manifest)).returncode == 0
    manifest.write_text(manifest.read_text().replace("[128713]", "[128713, 456789]"))

    report = provision_now(fakes, ignition_manifest=str(manifest))

    assert report.ok
    assert files_under(fakes.models_dir) == sorted(served)
    assert "was made from another manifest (civitai: '456789' added, not locked)" in (
        capsys.readouterr().err
    )


def test_a_hostile_lock_record_fails_alone_and_writes_nothing_outside(fakes: Fakes) -> None:
    served = publish(fakes)
    manifest = fakes.tmp_path / "project" / "ignition.yaml"
    assert lock_cli(fakes, str(manifest)).returncode == 0
    lock_path = manifest.parent / "ignition.lock"
    lock = json.loads(lock_path.read_text())
    escaping = dict(lock["models"][0], folder="../../outside")
    dotted = dict(lock["models"][0], folder="loras", filename="../x.safetensors")
    lock["models"] += [escaping, dotted]
    lock_path.write_text(json.dumps(lock))

    report = provision_now(fakes, ignition_manifest=str(manifest))

    failed = [o for o in report.outcomes if o.status == "failed"]
    assert [o.code for o in failed] == ["IGN111", "IGN111"]
    assert files_under(fakes.models_dir) == sorted(served)
    assert not (fakes.tmp_path / "outside").exists()


def test_ignition_lock_alone_provisions_the_locked_set(fakes: Fakes) -> None:
    served = publish(fakes)
    manifest = fakes.tmp_path / "project" / "ignition.yaml"
    assert lock_cli(fakes, str(manifest), "-o", str(fakes.tmp_path / "pinned.lock")).returncode == 0

    report = provision_now(fakes, ignition_lock=str(fakes.tmp_path / "pinned.lock"))

    assert report.ok, [o.error for o in report.outcomes]
    assert files_under(fakes.models_dir) == sorted(served)
    missing = provision_now(fakes, ignition_lock=str(fakes.tmp_path / "nope.lock"))
    assert [o.code for o in missing.outcomes] == ["IGN111"]
