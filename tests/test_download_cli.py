"""`ignition download` as a real subprocess against the fakes: exit codes, output, secrets."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from fakes.content import model_bytes
from fakes.services import Fakes
from helpers import files_under, serve_catalog
from ignition.settings import SECRET_ENV_NAMES

HF_GRANTED = "hf_granted_secret_token_42"
JSON_KEYS = {"name", "folder", "source", "url", "size", "sha256", "status", "error", "hint"}


def ignition(fakes: Fakes, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in SECRET_ENV_NAMES and not k.endswith("_MODELS")
    }
    source = str(Path(__file__).resolve().parents[1] / "src")
    clean["PYTHONPATH"] = os.pathsep.join(filter(None, [source, clean.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "ignition", *args],
        env={**clean, **fakes.env(**env)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_env_lists_download_everything_and_secrets_never_show(fakes: Fakes) -> None:
    serve_catalog(fakes, "clip_l", "ae")
    fakes.hf.add("bfl/gated", {"g.safetensors": model_bytes("g")}, gated=True)
    fakes.civitai.add(128713, login_required=True)
    models = fakes.tmp_path / "m"

    result = ignition(
        fakes,
        "download",
        "--models-dir",
        str(models),
        CIVITAI_MODELS="128713",
        HUGGINGFACE_MODELS="clip_l,ae,bfl/gated/g.safetensors:loras",
        CIVITAI_API_KEY=fakes.civitai.token,  # the alias users mix up
        HUGGING_FACE_HUB_TOKEN=HF_GRANTED,
    )

    assert result.returncode == 0, result.stderr
    assert files_under(models) == [
        "checkpoints/model_128713.safetensors",
        "loras/g.safetensors",
        "text_encoders/clip_l.safetensors",
        "vae/ae.safetensors",
    ]
    status = (fakes.tmp_path / "run" / "downloads.json").read_text()
    for text in (result.stdout, result.stderr, status):
        assert fakes.civitai.token not in text
        assert HF_GRANTED not in text
        assert "s3cr3tsig" not in text  # presigned signatures are credentials too
    assert fakes.storage.counters.authorization_seen == []


def test_a_token_is_not_on_the_command_line(fakes: Fakes) -> None:
    # Tokens are accepted only from the environment, so `ps` cannot show them.
    help_text = ignition(fakes, "download", "--help").stdout
    assert "--token" not in help_text
    assert "CIVITAI_TOKEN" in help_text


def test_failures_exit_1_with_what_to_do(fakes: Fakes) -> None:
    serve_catalog(fakes, "clip_l")
    fakes.hf.add("bfl/gated", {"g.safetensors": model_bytes("g")}, gated=True)
    fakes.civitai.add(5, login_required=True)
    wrong = "wrong-civitai-token-zzz"

    result = ignition(
        fakes,
        "download",
        "--civitai",
        "5,abc",
        "--hf",
        "clip_l,bfl/gated/g.safetensors",
        "--models-dir",
        str(fakes.models_dir),
        CIVITAI_TOKEN=wrong,
    )

    assert result.returncode == 1
    assert "did not accept CIVITAI_TOKEN" in result.stdout
    assert f"accept the license at {fakes.hf.url}/bfl/gated and set HF_TOKEN" in result.stdout
    assert "'abc' is not a model-version id" in result.stdout
    assert wrong not in result.stdout + result.stderr
    assert files_under(fakes.models_dir) == ["text_encoders/clip_l.safetensors"]


def test_json_summary_has_one_object_per_model(fakes: Fakes) -> None:
    serve_catalog(fakes, "clip_l")
    fakes.civitai.add(7)
    result = ignition(
        fakes,
        "download",
        "--json",
        "--civitai",
        "7",
        "--hf",
        "clip_l,nope",
        "--models-dir",
        str(fakes.models_dir),
    )
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False
    models = document["models"]
    assert all(set(m) >= JSON_KEYS for m in models)
    by_name = {m["name"]: m for m in models}
    assert by_name["civitai:7"]["status"] == "ok"
    assert by_name["civitai:7"]["folder"] == "checkpoints"
    assert by_name["civitai:7"]["url"] == f"{fakes.civitai.url}/api/download/models/7?fileId=70"
    assert len(by_name["clip_l"]["sha256"]) == 64
    assert by_name["nope"]["status"] == "failed"
    assert "unknown short name" in by_name["nope"]["error"]
    # What to do is its own field, not folded into the message.
    assert by_name["nope"]["hint"] and by_name["nope"]["hint"] not in by_name["nope"]["error"]
    assert by_name["civitai:7"]["hint"] is None
    status = json.loads((fakes.tmp_path / "run" / "downloads.json").read_text())
    assert {m["name"]: m["hint"] for m in status["models"]}["nope"] == by_name["nope"]["hint"]


def test_dry_run_prints_the_plan_and_fetches_nothing(fakes: Fakes) -> None:
    serve_catalog(fakes, "clip_l")
    fakes.civitai.add(7)
    args = ("--civitai", "7", "--hf", "clip_l", "--models-dir", str(fakes.models_dir))

    plain = ignition(fakes, "download", "--dry-run", *args)
    as_json = ignition(fakes, "download", "--dry-run", "--json", *args)

    assert plain.returncode == 0, plain.stderr
    assert "planned  text_encoders/clip_l.safetensors" in plain.stdout
    assert "to fetch" in plain.stdout
    assert {m["status"] for m in json.loads(as_json.stdout)["models"]} == {"planned"}
    assert fakes.storage.counters.requests == {}
    assert files_under(fakes.models_dir) == []


def test_nothing_requested_is_success(fakes: Fakes) -> None:
    result = ignition(fakes, "download", "--models-dir", str(fakes.models_dir))
    assert result.returncode == 0
    assert "nothing to download" in result.stdout


def test_unusable_flags_exit_2(fakes: Fakes) -> None:
    assert ignition(fakes, "download", "--no-such-flag").returncode == 2


def test_catalog_command_lists_every_name(fakes: Fakes) -> None:
    result = ignition(fakes, "catalog")
    assert result.returncode == 0
    for name in ("flux1-dev", "flux1-schnell", "ae", "clip_l", "t5xxl_fp16", "sdxl-base"):
        assert f"\n{name} " in result.stdout


def test_unusable_settings_exit_2_with_the_variable_named(fakes: Fakes) -> None:
    result = ignition(fakes, "download", IGNITION_CONNECTIONS="lots")
    assert result.returncode == 2
    assert "IGNITION_CONNECTIONS: Input should be a valid integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_process_list_never_shows_a_token(fakes: Fakes) -> None:
    fakes.civitai.add(1)
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_MODELS")}
    source = str(Path(__file__).resolve().parents[1] / "src")
    clean["PYTHONPATH"] = source
    env = {**clean, **fakes.env(CIVITAI_TOKEN=fakes.civitai.token, CIVITAI_MODELS="1")}
    command = [sys.executable, "-m", "ignition", "download", "--models-dir", str(fakes.models_dir)]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as run:
        seen = []
        while run.poll() is None:
            try:
                seen.append(Path(f"/proc/{run.pid}/cmdline").read_bytes())
            except OSError:
                break
            time.sleep(0.02)
        out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert seen
    assert all(fakes.civitai.token.encode() not in cmdline for cmdline in seen)
    assert fakes.civitai.token.encode() not in out + err


def test_an_unresolved_runpod_secret_is_named_and_counts_as_unset(fakes: Fakes) -> None:
    serve_catalog(fakes, "clip_l")
    result = ignition(
        fakes,
        "download",
        "--hf",
        "clip_l",
        "--models-dir",
        str(fakes.models_dir),
        HF_TOKEN="{{ RUNPOD_SECRET_hf_token }}",
    )
    assert result.returncode == 0, result.stderr
    assert "HF_TOKEN is '{{ RUNPOD_SECRET_hf_token }}': RunPod has no such secret" in result.stderr
    assert fakes.hf.counters.authorization_seen == [], "a placeholder must never be sent"
