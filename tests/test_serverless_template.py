"""`ignition template --serverless` and the RunPod Hub files: valid, and naming real settings."""

from __future__ import annotations

import json
from pathlib import Path

from ignition.cli import main
from ignition.settings import Settings
from ignition.template.schema import CREATE_TEMPLATE, request_errors

REPO = Path(__file__).resolve().parents[1]


def _env_names() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        names.update(str(choice) for choice in getattr(alias, "choices", ()))
    return names


def test_the_serverless_template_is_a_valid_worker_template(tmp_path: Path) -> None:
    assert main(["template", "--serverless", "--no-input", "--output-dir", str(tmp_path)]) == 0

    body = json.loads((tmp_path / "runpod-serverless-template.json").read_text(encoding="utf-8"))
    assert request_errors(body, CREATE_TEMPLATE) == []
    assert body["serverless"] is True and "ports" not in body and "mounts" not in body
    assert body["name"] == "Ignition ComfyUI serverless"
    assert body["env"]["HF_TOKEN"] == "{{ RUNPOD_SECRET_hf_token }}"
    assert set(body["env"]) <= _env_names()
    assert not (tmp_path / "runpod-template.json").exists()


def test_the_hub_listing_offers_real_settings() -> None:
    hub = json.loads((REPO / ".runpod" / "hub.json").read_text(encoding="utf-8"))

    assert hub["type"] == "serverless" and hub["config"]["runsOn"] == "GPU"
    keys = [entry["key"] for entry in hub["config"]["env"]]
    assert set(keys) <= _env_names()
    for entry in hub["config"]["env"]:
        assert {"name", "type", "description", "default", "advanced"} <= set(entry["input"])


def test_the_hub_tests_file_has_runpods_shape() -> None:
    tests = json.loads((REPO / ".runpod" / "tests.json").read_text(encoding="utf-8"))

    assert tests["tests"] and all({"name", "input", "timeout"} <= set(t) for t in tests["tests"])
    assert all("workflow" in t["input"] for t in tests["tests"])
    assert {"gpuTypeId", "gpuCount", "env"} <= set(tests["config"])
