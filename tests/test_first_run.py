"""What a newcomer meets on a first `ignition download`: the plan says what the real run will do,
failures keep what the user gave, the output lists each file once and ends with time and disk."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fakes.services import Fakes
from helpers import by_name, provision_now, serve_catalog
from ignition.pipeline import provision
from ignition.report import ModelOutcome
from ignition.settings import Settings, load_settings
from unprivileged import hand_over, reachable_dir, run_unprivileged


def test_dry_run_fails_an_early_access_version_without_a_token(fakes: Fakes) -> None:
    fakes.civitai.add(9, early_access_deadline="2026-12-24T00:00:00Z")
    report = provision_now(fakes, civitai="9", dry_run=True)
    (outcome,) = report.outcomes
    assert outcome.status == "failed" and outcome.code == "IGN304"
    assert outcome.error is not None and "2026-12-24" in outcome.error
    assert outcome.hint is not None and "CIVITAI_TOKEN" in outcome.hint


def test_dry_run_with_a_token_plans_an_early_access_version_with_a_warning(fakes: Fakes) -> None:
    fakes.civitai.add(9, early_access_deadline="2026-12-24T00:00:00Z")
    report = provision_now(fakes, civitai="9", dry_run=True, civitai_token=fakes.civitai.token)
    (outcome,) = report.outcomes
    assert outcome.status == "planned"
    assert any("early access" in warning for warning in outcome.warnings)


def test_dry_run_fails_a_folder_the_run_cannot_write(fakes: Fakes) -> None:
    serve_catalog(fakes, "clip_l")
    with reachable_dir() as root:
        locked = root / "models"
        locked.mkdir()
        hand_over(root)
        locked.chmod(0o555)
        settings = fakes.settings(huggingface_models="clip_l", models_dir_override=locked)
        for dry_run in (True, False):
            step = functools.partial(_provision_one, settings, dry_run=dry_run)
            outcome = run_unprivileged(step)
            assert outcome.status == "failed", dry_run
            assert outcome.code == "IGN500" and str(locked) in (outcome.error or "")


def _provision_one(settings: Settings, *, dry_run: bool) -> ModelOutcome:
    (outcome,) = asyncio.run(provision(settings, dry_run=dry_run)).outcomes
    return outcome


def test_a_failed_workflow_entry_keeps_its_folder_link_and_a_workflow_hint(fakes: Fakes) -> None:
    link = "https://civitai.com/api/download/models/404404"
    workflow = fakes.tmp_path / "wf.json"
    node = {"name": "gone.safetensors", "url": link, "directory": "loras"}
    document = {"nodes": [{"type": "LoraLoader", "properties": {"models": [node]}}]}
    workflow.write_text(json.dumps(document), "utf-8")

    report = provision_now(fakes, comfyui_workflows=str(workflow))

    outcome = by_name(report)["gone.safetensors"]
    assert outcome.status == "failed"
    assert (outcome.folder, outcome.filename) == ("loras", "gone.safetensors")
    assert outcome.url is not None and outcome.url.endswith("/api/download/models/404404")
    said = f"{outcome.error} {outcome.hint}"
    assert "modelVersionId=" not in said and "workflow" in said


def test_without_a_terminal_the_run_says_its_plan_and_lists_each_file_once(fakes: Fakes) -> None:
    serve_catalog(fakes, "clip_l", "ae")
    log = fakes.tmp_path / "log.txt"
    with log.open("w") as both:  # a container log: stdout and stderr are one file
        result = subprocess.run(
            ignition_argv("download", "--hf", "clip_l,ae", "--models-dir", str(fakes.models_dir)),
            env=ignition_env(fakes),
            stdout=both,
            stderr=both,
            timeout=60,
            check=False,
        )
    text = log.read_text()
    assert result.returncode == 0, text
    assert text.splitlines()[0] == "resolving 2 model entries"
    assert "fetching 2 file(s)" in text
    assert text.count("text_encoders/clip_l.safetensors") == 1, text
    summary = text.rstrip().splitlines()[-1]
    assert summary.startswith("2 ok") and summary.endswith(" s"), summary
    assert " free; " in summary


def test_a_tilde_means_the_home_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("IGNITION_MODELS_DIR", "~/models")
    assert load_settings().models_dir == tmp_path / "models"
    assert load_settings(models_dir_override=Path("~/m")).models_dir == tmp_path / "m"


def ignition_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "ignition", *args]


def ignition_env(fakes: Fakes) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_MODELS", "_TOKEN"))}
    source = str(Path(__file__).resolve().parents[1] / "src")
    return {**clean, "PYTHONPATH": source, **fakes.env()}
