"""Workflows provision their models end to end, through the fake Hub, as real subprocesses."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from fakes.content import model_bytes
from fakes.services import Fakes
from helpers import serve_catalog
from ignition.spec.workflow import WorkflowModel, read_workflow
from test_download_cli import ignition


def _templates_with_a_few_models() -> list[tuple[Path, list[WorkflowModel]]]:
    """Three official templates whose models all come from Hugging Face (2–4 files each)."""
    folder = resources.files("comfyui_workflow_templates_json") / "templates"
    chosen = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json") or entry.name.startswith(("index", "fuse_")):
            continue
        models = read_workflow(entry.read_text("utf-8"), origin=entry.name)
        if 2 <= len(models) <= 4 and all(m.url for m in models):
            chosen.append((Path(str(entry)), models))
        if len(chosen) == 3:
            return chosen
    raise AssertionError("the template package changed shape")


def _publish(fakes: Fakes, model: WorkflowModel) -> bytes:
    """Serve `model.url`'s repo file on the fake Hub."""
    assert model.url is not None
    owner, name, _resolve, _revision, *path = urlsplit(model.url).path.strip("/").split("/")
    data = model_bytes(model.name)
    repo = fakes.hf.repos.get(f"{owner}/{name}") or fakes.hf.add(f"{owner}/{name}", {})
    repo.files["/".join(path)] = data
    return data


def test_official_templates_land_in_their_folders_under_their_names(fakes: Fakes) -> None:
    expected: dict[Path, bytes] = {}
    args: list[str] = []
    for path, models in _templates_with_a_few_models():
        args += ["--workflow", str(path)]
        for model in models:
            expected[fakes.models_dir / model.directory / model.name] = _publish(fakes, model)
    result = ignition(fakes, "download", *args, "--models-dir", str(fakes.models_dir))
    assert result.returncode == 0, result.stdout + result.stderr
    for target, data in expected.items():
        assert target.read_bytes() == data, target
    again = ignition(fakes, "download", *args, "--models-dir", str(fakes.models_dir))
    assert again.returncode == 0 and "skipped" in again.stdout


def _write(tmp_path: Path, name: str, document: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


SDXL = "sd_xl_base_1.0.safetensors"


def test_bare_loader_names_match_the_catalog_and_the_rest_are_missing(fakes: Fakes) -> None:
    serve_catalog(fakes, "sdxl-base")
    workflow = _write(
        fakes.tmp_path,
        "sdxl.json",
        {
            "nodes": [
                {
                    "type": "CheckpointLoaderSimple",
                    "widgets_values": ["sd_xl_base_1.0.safetensors"],
                },
                {"type": "LoraLoader", "widgets_values": ["my_private_lora.safetensors", 1, 1]},
            ]
        },
    )
    result = ignition(
        fakes, "download", "--workflow", str(workflow), "--dry-run", "--json",
        "--models-dir", str(fakes.models_dir),
    )  # fmt: skip
    assert result.returncode == 1, "a workflow that cannot run must not look fine"
    models = {m["filename"]: m for m in json.loads(result.stdout)["models"]}
    assert models[SDXL]["status"] == "planned"
    assert models[SDXL]["folder"] == "checkpoints"
    assert models[SDXL]["source"] == "huggingface"
    lora = models["my_private_lora.safetensors"]
    assert lora["status"] == "missing" and lora["folder"] == "loras"
    assert "missing, no source known" in lora["error"]
    assert "sdxl.json" in lora["error"]


def test_a_missing_model_the_user_already_uploaded_counts_as_present(fakes: Fakes) -> None:
    uploaded = fakes.models_dir / "loras" / "mine.safetensors"
    uploaded.parent.mkdir(parents=True)
    uploaded.write_bytes(b"user's own")
    workflow = _write(
        fakes.tmp_path,
        "w.json",
        {"nodes": [{"type": "LoraLoader", "widgets_values": ["mine.safetensors"]}]},
    )
    result = ignition(
        fakes, "download", "--workflow", str(workflow), "--models-dir", str(fakes.models_dir)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert uploaded.read_bytes() == b"user's own"


def test_unknown_directory_and_foreign_urls_are_reported(fakes: Fakes) -> None:
    def node(name: str, url: str, directory: str) -> dict[str, object]:
        models = [{"name": name, "url": url, "directory": directory}]
        return {"type": "SomeLoader", "properties": {"models": models}}

    workflow = _write(
        fakes.tmp_path,
        "odd.json",
        {
            "nodes": [
                node(
                    "a.safetensors",
                    "https://huggingface.co/o/r/resolve/main/a.safetensors",
                    "nowhere",
                ),
                node("b.safetensors", "https://example.com/b.safetensors", "loras"),
            ]
        },
    )
    result = ignition(
        fakes,
        "download",
        "--workflow",
        str(workflow),
        "--json",
        "--models-dir",
        str(fakes.models_dir),
    )
    assert result.returncode == 1
    errors = {m["name"]: m["error"] for m in json.loads(result.stdout)["models"]}
    assert "unknown folder 'nowhere'" in errors["a.safetensors"]
    assert "example.com" in errors["b.safetensors"]


def test_workflow_url_is_fetched_from_the_configured_endpoint(fakes: Fakes) -> None:
    data = serve_catalog(fakes, "clip_l")["clip_l"]
    workflow = {"nodes": [{"type": "CLIPLoader", "widgets_values": ["clip_l.safetensors", "flux"]}]}
    fakes.hf.add("someone/workflows", {"wf.json": json.dumps(workflow).encode()}, small={"wf.json"})
    result = ignition(
        fakes,
        "download",
        "--models-dir",
        str(fakes.models_dir),
        COMFYUI_WORKFLOWS="https://huggingface.co/someone/workflows/resolve/main/wf.json",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (fakes.models_dir / "text_encoders" / "clip_l.safetensors").read_bytes() == data


def test_malformed_workflow_is_named_and_other_models_still_land(fakes: Fakes) -> None:
    data = serve_catalog(fakes, "ae")["ae"]
    broken = fakes.tmp_path / "broken.json"
    broken.write_text('{"nodes": [', encoding="utf-8")
    result = ignition(
        fakes,
        "download",
        "--models-dir",
        str(fakes.models_dir),
        HUGGINGFACE_MODELS="ae",
        COMFYUI_WORKFLOWS=f"{broken},{fakes.tmp_path / 'absent.json'}",
    )
    assert result.returncode == 1
    assert "broken.json is not valid JSON" in result.stdout
    assert "absent.json cannot be read" in result.stdout
    assert (fakes.models_dir / "vae" / "ae.safetensors").read_bytes() == data
