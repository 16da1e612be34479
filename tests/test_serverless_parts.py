"""The worker's pure parts: job input rules, UI → API conversion rules, ComfyUI's 400 text."""

from __future__ import annotations

from typing import Any

import pytest

from ignition.errors import JobInputError
from ignition.serverless.comfy_api import rejection
from ignition.serverless.handler import with_job_prefix
from ignition.serverless.job_input import parse_job_input
from ignition.serverless.ui_to_api import convert

_INFO: dict[str, Any] = {
    "Loader": {
        "input": {"required": {"name": [["a.safetensors", "b.safetensors"]]}},
        "output": ["MODEL"],
    },
    "Sampler": {
        "input": {
            "required": {
                "model": ["MODEL"],
                "seed": ["INT", {"control_after_generate": True}],
                "steps": ["INT", {}],
            },
            "optional": {"note": ["STRING", {}]},
        },
        "input_order": {"required": ["model", "seed", "steps"], "optional": ["note"]},
    },
}


def _node(node_id: int, kind: str, widgets: list[Any], links: list[Any], mode: int = 0) -> Any:
    inputs = [{"name": name, "type": t, "link": link} for name, t, link in links]
    return {"id": node_id, "type": kind, "mode": mode, "inputs": inputs, "widgets_values": widgets}


def test_widget_values_are_named_and_the_seed_control_is_skipped() -> None:
    workflow = {
        "nodes": [
            _node(1, "Loader", ["b.safetensors"], []),
            _node(2, "Sampler", [5, "fixed", 20, "hi"], [("model", "MODEL", 1)]),
        ],
        "links": [[1, 1, 0, 2, 0, "MODEL"]],
    }

    api = convert(workflow, _INFO)

    assert api["1"]["inputs"] == {"name": "b.safetensors"}
    assert api["2"]["inputs"] == {"model": ["1", 0], "seed": 5, "steps": 20, "note": "hi"}


def test_a_bypassed_node_passes_its_input_on_and_a_muted_one_is_left_out() -> None:
    workflow = {
        "nodes": [
            _node(1, "Loader", ["a.safetensors"], []),
            _node(2, "Sampler", [1, "fixed", 2], [("model", "MODEL", 1)], mode=4),
            _node(3, "Sampler", [3, "fixed", 4], [("model", "MODEL", 2)]),
            _node(4, "Loader", ["b.safetensors"], [], mode=2),
        ],
        "links": [[1, 1, 0, 2, 0, "MODEL"], [2, 2, 0, 3, 0, "MODEL"]],
    }

    api = convert(workflow, _INFO)

    assert set(api) == {"1", "3"}
    assert api["3"]["inputs"]["model"] == ["1", 0]


def test_an_unknown_class_is_refused_with_how_to_export() -> None:
    workflow = {"nodes": [_node(7, "Mystery", [], [])], "links": []}

    with pytest.raises(JobInputError, match="node 7 is a 'Mystery'") as raised:
        convert(workflow, _INFO)
    assert "Export (API)" in str(raised.value)


def test_job_input_accepts_worker_comfyuis_shape_and_ignitions_additions() -> None:
    parsed = parse_job_input(
        {
            "workflow": '{"1": {"class_type": "Loader", "inputs": {}}}',
            "images": [{"name": "in.png", "image": "data:image/png;base64,AAAA"}],
            "models": ["12345", "https://civitai.com/models/1?modelVersionId=2", "org/repo/f.gguf"],
            "comfy_org_api_key": "key",
        }
    )

    assert parsed.workflow == {"1": {"class_type": "Loader", "inputs": {}}}
    assert not parsed.ui_format and parsed.images[0].name == "in.png"
    assert parsed.civitai_models == "12345,https://civitai.com/models/1?modelVersionId=2"
    assert parsed.huggingface_models == "org/repo/f.gguf"
    assert parsed.comfy_org_api_key == "key"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({}, "Missing 'workflow'"),
        ({"workflow": "{not json"}, "not JSON"),
        ({"workflow": {"1": {"inputs": {}}}}, "Export (API)"),
        ({"workflow": {"1": {"class_type": "X"}}, "images": [{"name": ".hidden"}]}, "plain file"),
        ({"workflow": {"1": {"class_type": "X"}}, "models": {"civit": "1"}}, "unknown keys"),
    ],
)
def test_job_input_refusals_say_what_to_fix(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(JobInputError) as raised:
        parse_job_input(raw)
    assert message in str(raised.value)


def test_a_comfyui_400_is_one_line_per_node_input() -> None:
    body = {
        "error": {"type": "prompt_outputs_failed_validation", "message": "failed"},
        "node_errors": {
            "4": {
                "class_type": "Loader",
                "errors": [
                    {
                        "type": "value_not_in_list",
                        "message": "Value not in list",
                        "details": "name: 'c' not in [...]",
                        "extra_info": {"input_name": "name"},
                    }
                ],
            }
        },
    }

    error = rejection(body, {})

    assert error.message == (
        "ComfyUI refused the workflow: node 4 (Loader) input name: "
        "Value not in list: name: 'c' not in [...]"
    )


def test_every_filename_prefix_moves_under_the_jobs_folder() -> None:
    workflow = {
        "1": {"class_type": "SaveImage", "inputs": {"filename_prefix": "video/clip"}},
        "2": {"class_type": "Loader", "inputs": {"name": "a"}},
    }

    changed = with_job_prefix(workflow, "job-1")

    assert changed["1"]["inputs"]["filename_prefix"] == "ignition-jobs/job-1/video/clip"
    assert changed["2"] == workflow["2"]
    assert workflow["1"]["inputs"]["filename_prefix"] == "video/clip"  # the input is untouched
