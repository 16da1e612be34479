"""`ignition template` without --deploy: the generated request body, its page, and the CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ignition.cli import main
from ignition.errors import ConfigError
from ignition.template.build import SecretNames, TemplateInputs, build_request
from ignition.template.image import PLACEHOLDER_IMAGE, choose_image, published_image
from ignition.template.page import render_page
from ignition.template.schema import CREATE_TEMPLATE, UPDATE_TEMPLATE, request_errors
from support import require_tool

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The user's own shell must not leak into what a test generates, nor its terminal ask."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    for name in list(os.environ):
        if name.startswith(("CIVITAI", "HF_", "HUGGING", "RUNPOD", "COMFY", "FILEBROWSER")) or (
            name in {"PERSISTENT_STORAGE", "ENABLE_MANAGER_UI", "IGNITION_IMAGE"}
        ):
            monkeypatch.delenv(name)


def generate(tmp_path: Path, *flags: str) -> tuple[dict[str, object], str]:
    assert main(["template", "--output-dir", str(tmp_path), *flags]) == 0
    body = json.loads((tmp_path / "runpod-template.json").read_text(encoding="utf-8"))
    return body, (tmp_path / "runpod-template.md").read_text(encoding="utf-8")


def test_default_template_carries_the_seed_variables_and_secret_references(tmp_path: Path) -> None:
    body, _ = generate(tmp_path)
    assert body["env"] == {
        "CIVITAI_MODELS": "",
        "HUGGINGFACE_MODELS": "",
        "CIVITAI_TOKEN": "{{ RUNPOD_SECRET_civitai_token }}",
        "HF_TOKEN": "{{ RUNPOD_SECRET_hf_token }}",
        "FILEBROWSER_PASSWORD": "{{ RUNPOD_SECRET_filebrowser_password }}",
        "PERSISTENT_STORAGE": "none",
        "COMFYUI_PORT": "8188",
        "FILEBROWSER_PORT": "8080",
        "ENABLE_MANAGER_UI": "false",
        "COMFY_FLAGS": "--preview-method auto",
    }
    assert body["ports"] == ["8188/http", "8080/http", "22/tcp"]
    assert body["mounts"] == {"persistent": {"size": 100, "path": "/workspace"}}
    assert body["startSsh"] is True
    # RunPod's default for an omitted startJupyter is true: it must be written out.
    assert body["startJupyter"] is False
    assert "allowedCudaVersions" not in body


def test_generated_json_validates_against_the_shipped_schema(tmp_path: Path) -> None:
    body, _ = generate(
        tmp_path, "--civitai", "1,2", "--hf", "clip_l", "--jupyter", "--cuda", "12.8"
    )
    assert request_errors(body, CREATE_TEMPLATE) == []
    # Updating an existing template sends the same body.
    assert request_errors(body, UPDATE_TEMPLATE) == []


def test_schema_checks_follow_refs_through_allof(tmp_path: Path) -> None:
    body, _ = generate(tmp_path)
    # size's minimum lives in PersistentMount, two $refs below the request schema.
    small = {**body, "mounts": {"persistent": {"size": 5, "path": "/workspace"}}}
    assert request_errors(small, CREATE_TEMPLATE) == [
        "$.mounts.persistent.size: 5 is less than the minimum of 10"
    ]
    # disk/env/ports are declared in BaseContainerConfig (allOf → $ref → allOf → $ref), so a
    # stray key is caught by unevaluatedProperties only if those refs were followed.
    assert request_errors({**body, "bogus": 1}, CREATE_TEMPLATE) == [
        "$: Unevaluated properties are not allowed ('bogus' was unexpected)"
    ]
    assert request_errors({**body, "env": {"A": 1}}, CREATE_TEMPLATE) == [
        "$.env.A: 1 is not of type 'string'"
    ]
    assert request_errors({"image": "x"}, CREATE_TEMPLATE) == ["$: 'name' is a required property"]


def test_output_is_byte_identical_across_runs(tmp_path: Path) -> None:
    outputs = []
    for seed in ("1", "2"):
        directory = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed, "CIVITAI_MODELS": "46846, 128713"}
        subprocess.run(
            [sys.executable, "-m", "ignition", "template", "--output-dir", str(directory)],
            env=env,
            check=True,
            capture_output=True,
        )
        outputs.append(
            [
                (directory / name).read_bytes()
                for name in ("runpod-template.json", "runpod-template.md")
            ]
        )
    assert outputs[0] == outputs[1]
    for data in outputs[0]:
        assert data.endswith(b"\n") and not data.endswith(b"\n\n")
    assert json.loads(outputs[0][0])["env"]["CIVITAI_MODELS"] == "46846,128713"


def test_secret_values_from_the_environment_never_enter_the_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CIVITAI_TOKEN", "civitai-value-7f3a")
    monkeypatch.setenv("HF_TOKEN", "hf_value_9b2c")
    monkeypatch.setenv("FILEBROWSER_PASSWORD", "fb-value-1d4e")
    generate(tmp_path)
    for path in tmp_path.iterdir():
        text = path.read_text(encoding="utf-8")
        assert "7f3a" not in text and "9b2c" not in text and "1d4e" not in text


def test_flags_and_environment_shape_the_template(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMFYUI_PORT", "3000")
    monkeypatch.setenv("ENABLE_MANAGER_UI", "true")
    monkeypatch.setenv("HUGGINGFACE_MODELS", "from-env")
    body, page = generate(
        tmp_path,
        "--hf",
        "flux1-dev, ae",
        "--name",
        "My ComfyUI",
        "--image",
        "ghcr.io/me/ignition:v1",
        "--jupyter",
        "--cuda",
        "12.8,12.9",
        "--hf-secret",
        "my_hf",
    )
    assert body["name"] == "My ComfyUI" and body["image"] == "ghcr.io/me/ignition:v1"
    assert body["ports"] == ["3000/http", "8080/http", "22/tcp", "8888/http"]
    assert body["startJupyter"] is True
    assert body["allowedCudaVersions"] == ["12.8", "12.9"]
    env = body["env"]
    assert isinstance(env, dict)
    assert env["HUGGINGFACE_MODELS"] == "flux1-dev,ae"  # the flag wins over the environment
    assert env["COMFYUI_PORT"] == "3000" and env["ENABLE_MANAGER_UI"] == "true"
    assert env["HF_TOKEN"] == "{{ RUNPOD_SECRET_my_hf }}"
    assert "| `3000/http` | ComfyUI |" in page and "`my_hf`" in page


def test_page_explains_that_missing_secrets_are_harmless() -> None:
    page = render_page(TemplateInputs(civitai_models="123"))
    assert page.startswith("# Ignition ComfyUI\n") and page.endswith("\n")
    assert "A missing secret is harmless" in page
    assert "Ignition generates a password, prints it once in the startup log" in page
    assert "- CivitAI version ids (`CIVITAI_MODELS`): `123`" in page


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (TemplateInputs(comfyui_port=22), "one port twice"),
        (TemplateInputs(filebrowser_port=8188), "one port twice"),
        (TemplateInputs(comfyui_port=70000), "outside 1-65535"),
        (TemplateInputs(image="my image"), "not an image reference"),
        (TemplateInputs(secrets=SecretNames(hf_token="hf token")), "secret name"),
    ],
)
def test_unusable_inputs_are_refused(inputs: TemplateInputs, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_request(inputs)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--volume-gb", "5"], "$.mounts.persistent.size: 5 is less than the minimum of 10"),
        (["--cuda", "12"], "$.allowedCudaVersions[0]: '12' does not match"),
        (["--disk-gb", "0"], "$.disk: 0 is less than the minimum of 1"),
    ],
)
def test_flags_the_schema_refuses_fail_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flags: list[str], message: str
) -> None:
    assert main(["template", "--output-dir", str(tmp_path / "out"), *flags]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_dry_run_prints_the_request_with_the_key_masked_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "rpa_dryrun_secret_5e6f")
    monkeypatch.setenv("RUNPOD_API_URL", "https://api.example.test/")
    assert main(["template", "--deploy", "--dry-run", "--output-dir", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(
        "POST https://api.example.test/v2/templates\nAuthorization: Bearer ********\n"
    )
    assert "5e6f" not in out
    assert '"name": "Ignition ComfyUI"' in out
    assert not (tmp_path / "o").exists()


def test_template_sh_finds_ignition_in_the_checkouts_venv(tmp_path: Path) -> None:
    """After the README's install `ignition` is in .venv/bin, not on PATH (the seed's exit 127)."""
    checkout = tmp_path / "checkout"
    (checkout / ".venv" / "bin").mkdir(parents=True)
    (checkout / "template.sh").write_bytes((REPO / "template.sh").read_bytes())
    venv_ignition = checkout / ".venv" / "bin" / "ignition"
    venv_ignition.write_text(f'#!/bin/sh\nexec {sys.executable} -m ignition "$@"\n', "utf-8")
    venv_ignition.chmod(0o755)
    bash = require_tool("bash")
    env = {"PATH": str(Path(bash).parent), "HOME": str(tmp_path)}  # no ignition on this PATH
    result = subprocess.run(
        [bash, str(checkout / "template.sh"), "--output-dir", str(tmp_path / "out"), "--no-input"],
        env={**env, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "runpod-template.json").is_file()


def test_the_page_says_a_stop_deletes_outputs_and_models_and_how_to_keep_them(
    tmp_path: Path,
) -> None:
    _, page = generate(tmp_path)
    storage = page.split("## Storage", 1)[1].split("\n## ", 1)[0]
    assert "Stop button" in storage and "outputs" in storage and "models" in storage
    assert "NUKE_ON_STOP=false" in storage and "PERSISTENT_STORAGE" in storage


def test_the_placeholder_image_is_warned_about_and_says_how_to_set_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ignition.cli.template.choose_image", lambda *_: PLACEHOLDER_IMAGE)
    body, _ = generate(tmp_path)
    assert body["image"] == PLACEHOLDER_IMAGE
    err = capsys.readouterr().err
    assert "placeholder" in err and "--image" in err and "IGNITION_IMAGE" in err


def test_ignition_image_sets_the_image_and_the_flag_wins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IGNITION_IMAGE", "ghcr.io/me/mine:2")
    assert generate(tmp_path)[0]["image"] == "ghcr.io/me/mine:2"
    assert generate(tmp_path, "--image", "ghcr.io/me/other:3")[0]["image"] == "ghcr.io/me/other:3"
    assert "placeholder" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "remote",
    [
        "https://github.com/Some-One/My.Fork.git",
        "git@github.com:Some-One/My.Fork.git",
        "ssh://git@github.com/Some-One/My.Fork",
    ],
)
def test_the_default_image_is_what_the_checkouts_workflow_publishes(
    tmp_path: Path, remote: str
) -> None:
    git = require_tool("git")
    subprocess.run([git, "init", "-q", str(tmp_path)], check=True)
    subprocess.run([git, "-C", str(tmp_path), "remote", "add", "origin", remote], check=True)
    (tmp_path / "sub").mkdir()
    assert published_image(tmp_path / "sub") == "ghcr.io/some-one/my.fork:latest"
    assert choose_image(None, None, tmp_path / "sub") == "ghcr.io/some-one/my.fork:latest"


def test_without_a_github_checkout_the_default_is_the_placeholder(tmp_path: Path) -> None:
    assert published_image(tmp_path) is None
    assert choose_image(None, None, tmp_path) == PLACEHOLDER_IMAGE


def test_template_sh_wrapper_forwards_its_arguments(tmp_path: Path) -> None:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        ["bash", str(REPO / "template.sh"), "--output-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "runpod-template.json").is_file()
