"""Reading model references out of real ComfyUI workflows (the official template set)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from ignition.errors import SpecError
from ignition.spec.workflow import read_workflow


def _official_templates() -> list[Path]:
    package = resources.files("comfyui_workflow_templates_json") / "templates"
    return sorted(
        Path(str(entry))
        for entry in package.iterdir()
        if entry.name.endswith(".json") and not entry.name.startswith(("index", "fuse_"))
    )


def _declared_models(tree: Any) -> Iterator[tuple[str, str, str]]:
    """Independent count: every {name, url, directory} object anywhere under a `models` key."""
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key == "models" and isinstance(value, list):
                for item in value:
                    if isinstance(item, dict) and {"name", "url", "directory"} <= item.keys():
                        yield item["directory"], item["name"], item["url"]
            yield from _declared_models(value)
    elif isinstance(tree, list):
        for item in tree:
            yield from _declared_models(item)


def test_every_official_template_reference_is_extracted() -> None:
    templates = _official_templates()
    assert len(templates) > 300, "comfyui-workflow-templates-json should ship hundreds"
    total = 0
    for path in templates:
        text = path.read_text(encoding="utf-8")
        expected = {(d, n) for d, n, _url in _declared_models(json.loads(text))}
        found = {(m.directory, m.name) for m in read_workflow(text, origin=str(path)) if m.url}
        assert found == expected, path.name
        total += len(expected)
    assert total > 500


def test_subgraph_loaders_are_read(tmp_path: Path) -> None:
    workflow = {
        "nodes": [{"id": 1, "type": "9f0c-uuid", "widgets_values": ["x.safetensors"]}],
        "definitions": {
            "subgraphs": [
                {
                    "nodes": [
                        {
                            "type": "VAELoader",
                            "widgets_values": ["ae.safetensors"],
                            "properties": {
                                "models": [
                                    {
                                        "name": "ae.safetensors",
                                        "url": "https://huggingface.co/o/r/resolve/main/ae.safetensors",
                                        "directory": "vae",
                                    }
                                ]
                            },
                        }
                    ]
                }
            ]
        },
    }
    models = read_workflow(json.dumps(workflow), origin="wf.json")
    assert [(m.directory, m.name, m.url is not None) for m in models] == [
        ("vae", "ae.safetensors", True)
    ]


def test_loader_widgets_without_url_are_listed() -> None:
    workflow = {
        "nodes": [
            {"type": "CheckpointLoaderSimple", "widgets_values": ["sd_xl_base_1.0.safetensors"]},
            {"type": "DualCLIPLoader", "widgets_values": ["clip_l.safetensors", "t5.sft", "flux"]},
            {"type": "KSampler", "widgets_values": [1, "euler.safetensors"]},
        ]
    }
    models = read_workflow(json.dumps(workflow), origin="wf.json")
    assert {(m.directory, m.name) for m in models} == {
        ("checkpoints", "sd_xl_base_1.0.safetensors"),
        ("text_encoders", "clip_l.safetensors"),
        ("text_encoders", "t5.sft"),
    }
    assert all(m.url is None for m in models)


def test_api_format_uses_input_names() -> None:
    prompt = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "v1-5.safetensors"}},
        "5": {"class_type": "CLIPVisionLoader", "inputs": {"clip_name": "clip_vision_h.sft"}},
        "6": {"class_type": "KSampler", "inputs": {"seed": 1}},
    }
    models = read_workflow(json.dumps(prompt), origin="api.json")
    assert {(m.directory, m.name) for m in models} == {
        ("checkpoints", "v1-5.safetensors"),
        ("clip_vision", "clip_vision_h.sft"),
    }


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"nodes": [', "not valid JSON"),
        ("[1, 2]", "top level is not an object"),
        ('{"foo": 1}', "neither `nodes`"),
    ],
)
def test_malformed_workflow_names_file_and_problem(text: str, problem: str) -> None:
    with pytest.raises(SpecError) as caught:
        read_workflow(text, origin="/tmp/broken.json")
    assert "/tmp/broken.json" in str(caught.value)
    assert problem in str(caught.value)
