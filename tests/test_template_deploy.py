"""`ignition template --deploy` against a fake RunPod v2 API on loopback."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from pydantic import SecretStr

from fakes.runpod import FakeRunPod, Scripted
from ignition._http import RetryPolicy
from ignition.cli import main
from ignition.cli import template as template_cli
from ignition.errors import (
    ApiKeyRejectedError,
    ConfigError,
    DeployError,
    RunPodUnreachableError,
    TemplateRejectedError,
)
from ignition.template.build import TemplateInputs, build_request
from ignition.template.deploy import deploy_template
from ignition.template.image import choose_image
from ignition.template.schema import request_errors

API_KEY = "rpa_TESTKEY_3c9d1e"
NO_WAIT = RetryPolicy(attempts=3, first_delay_s=0.0, max_delay_s=0.0)


@pytest.fixture(autouse=True)
def no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even under `pytest -s` at a terminal, never stop to ask for models."""
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))


@pytest.fixture
def runpod(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRunPod]:
    with FakeRunPod(API_KEY) as fake:
        monkeypatch.setenv("RUNPOD_API_URL", fake.url)
        monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
        yield fake


def deploy_cli(tmp_path: Path, *flags: str) -> int:
    return main(["template", "--deploy", "--output-dir", str(tmp_path), *flags])


def test_deploy_creates_the_template(
    runpod: FakeRunPod, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert deploy_cli(tmp_path, "--civitai", "128713") == 0
    out = capsys.readouterr().out
    assert [(r.method, r.path) for r in runpod.requests] == [
        ("GET", "/v2/templates"),
        ("POST", "/v2/templates"),
    ]
    assert all(r.authorization == f"Bearer {API_KEY}" for r in runpod.requests)
    written = json.loads((tmp_path / "runpod-template.json").read_text(encoding="utf-8"))
    assert runpod.requests[1].body == written
    (template,) = runpod.templates.values()
    assert template["env"]["CIVITAI_MODELS"] == "128713"
    assert f"created template 'Ignition ComfyUI': id {template['id']}" in out
    assert f"https://console.runpod.io/deploy?template={template['id']}" in out


def test_deploy_updates_the_template_that_already_has_the_name(
    runpod: FakeRunPod, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runpod.add_template(name="Someone else's", image="other:1")
    existing = runpod.add_template(name="Ignition ComfyUI", image="old:1", disk=5)
    assert deploy_cli(tmp_path) == 0
    assert [(r.method, r.path) for r in runpod.requests] == [
        ("GET", "/v2/templates"),
        ("PATCH", f"/v2/templates/{existing['id']}"),
    ]
    assert len(runpod.templates) == 2
    default_image = choose_image(None, None, Path(template_cli.__file__).parent)
    assert runpod.templates[existing["id"]]["image"] == default_image
    assert f"updated template 'Ignition ComfyUI': id {existing['id']}" in capsys.readouterr().out


def test_running_deploy_twice_updates_rather_than_duplicates(
    runpod: FakeRunPod, tmp_path: Path
) -> None:
    assert deploy_cli(tmp_path) == 0
    assert deploy_cli(tmp_path, "--hf", "clip_l") == 0
    (template,) = runpod.templates.values()
    assert template["env"]["HUGGINGFACE_MODELS"] == "clip_l"
    assert [r.method for r in runpod.requests] == ["GET", "POST", "GET", "PATCH"]


async def test_the_fake_refuses_a_second_template_with_the_same_name(runpod: FakeRunPod) -> None:
    """Blind POSTs would fail against this fake: update-on-duplicate is really exercised."""
    body = build_request(TemplateInputs())
    answers = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as session:
        for _ in range(2):
            async with session.post(f"{runpod.url}/v2/templates", json=body) as response:
                answers.append((response.status, (await response.json()).get("detail")))
    assert answers[0][0] == 201
    assert answers[1] == (400, "template name 'Ignition ComfyUI' already in use")


async def test_the_fakes_errors_have_the_schemas_error_shape(runpod: FakeRunPod) -> None:
    answers = []
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{runpod.url}/v2/templates") as response:  # no key at all
            answers.append((response.status, response.content_type, await response.json()))
        body = {"name": "x", "image": "y", "bogus": 1}
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with session.post(f"{runpod.url}/v2/templates", json=body, headers=headers) as r:
            answers.append((r.status, r.content_type, await r.json()))
    assert [(status, kind) for status, kind, _ in answers] == [
        (401, "application/problem+json"),
        (422, "application/problem+json"),
    ]
    for _, _, payload in answers:
        assert request_errors(payload, "ErrorResponse") == []
    assert answers[1][2]["errors"] == [
        "$: Unevaluated properties are not allowed ('bogus' was unexpected)"
    ]


def test_a_wrong_key_says_to_check_runpod_api_key(
    runpod: FakeRunPod,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("RUNPOD_API_KEY", "rpa_WRONG_8a8a")
    assert deploy_cli(tmp_path) == 2
    captured = capsys.readouterr()
    assert "error [IGN601]: RunPod refused the API key (401: invalid api key)" in captured.err
    assert "check RUNPOD_API_KEY" in captured.err
    # The hint is a line of its own, so a script can tell it from the message.
    assert "\nhint: check RUNPOD_API_KEY" in captured.err
    assert "8a8a" not in captured.out + captured.err
    assert runpod.templates == {}


async def test_forbidden_is_an_api_key_problem_too(runpod: FakeRunPod) -> None:
    runpod.scripted.append(Scripted(403, "access denied"))
    with pytest.raises(ApiKeyRejectedError, match=r"\(403: access denied\)") as caught:
        await deploy_template(
            build_request(TemplateInputs()), api_url=runpod.url, api_key=SecretStr(API_KEY)
        )
    assert "check RUNPOD_API_KEY" in str(caught.value)


async def test_a_body_the_server_rejects_reports_its_validation_message(
    runpod: FakeRunPod,
) -> None:
    body = build_request(TemplateInputs())
    body["mounts"] = {"persistent": {"size": 5, "path": "/workspace"}}
    with pytest.raises(TemplateRejectedError) as caught:
        await deploy_template(body, api_url=runpod.url, api_key=SecretStr(API_KEY))
    assert str(caught.value).startswith(
        "RunPod rejected the template (422): Request validation failed. "
        "$.mounts.persistent.size: 5 is less than the minimum of 10"
    )
    assert runpod.templates == {}


async def test_rate_limiting_is_waited_out(
    runpod: FakeRunPod, caplog: pytest.LogCaptureFixture
) -> None:
    runpod.scripted += [Scripted(429, "slow down", {"Retry-After": "0"})] * 2
    deployed = await deploy_template(
        build_request(TemplateInputs()),
        api_url=runpod.url,
        api_key=SecretStr(API_KEY),
        retry=NO_WAIT,
    )
    assert deployed.created and deployed.template_id in runpod.templates
    assert [r.method for r in runpod.requests] == ["GET", "GET", "GET", "POST"]
    assert caplog.messages == ["RunPod is rate limiting; retrying in 0.0 s"] * 2
    assert API_KEY not in caplog.text


async def test_rate_limiting_that_never_ends_gives_up(runpod: FakeRunPod) -> None:
    runpod.scripted += [Scripted(429, "slow down")] * 5
    with pytest.raises(DeployError, match=r"kept answering 429 .*\(3 attempts\)"):
        await deploy_template(
            build_request(TemplateInputs()),
            api_url=runpod.url,
            api_key=SecretStr(API_KEY),
            retry=NO_WAIT,
        )
    assert len(runpod.requests) == 3


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (Scripted(503, "upstream unavailable"), r"RunPod's API failed \(503\): upstream"),
        (
            Scripted(307, "moved", {"Location": "http://127.0.0.2:1/v2/templates"}),
            r"was redirected \(307\); the key is not sent on redirects",
        ),
    ],
)
async def test_server_failures_and_redirects_are_reported_not_retried(
    runpod: FakeRunPod, answer: Scripted, message: str
) -> None:
    runpod.scripted.append(answer)
    with pytest.raises(DeployError, match=message):
        await deploy_template(
            build_request(TemplateInputs()), api_url=runpod.url, api_key=SecretStr(API_KEY)
        )
    assert len(runpod.requests) == 1


def test_an_unreachable_api_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("RUNPOD_API_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("RUNPOD_API_KEY", API_KEY)
    assert deploy_cli(tmp_path) == 2
    err = capsys.readouterr().err
    assert f"error [IGN603]: cannot reach RunPod at http://127.0.0.1:{port}" in err
    assert "check the network connection and RUNPOD_API_URL" in err
    assert API_KEY not in err


async def test_unreachable_maps_to_its_own_error_type() -> None:
    with pytest.raises(RunPodUnreachableError):
        await deploy_template(
            build_request(TemplateInputs()),
            api_url="http://127.0.0.1:9",
            api_key=SecretStr(API_KEY),
        )


@pytest.mark.parametrize(
    ("url", "key", "message"),
    [
        ("http://api.example.test", API_KEY, "without TLS"),
        ("https://api.example.test", "two words", "spaces or control characters"),
        ("https://api.example.test", "line\nbreak", "spaces or control characters"),
    ],
)
async def test_unsafe_settings_are_refused_before_any_request(
    url: str, key: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        await deploy_template(build_request(TemplateInputs()), api_url=url, api_key=SecretStr(key))
    assert key not in str(caught.value)


def test_deploy_without_a_key_writes_the_files_and_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    assert deploy_cli(tmp_path) == 2
    assert "--deploy needs RUNPOD_API_KEY" in capsys.readouterr().err
    assert (tmp_path / "runpod-template.json").is_file()


def test_secrets_never_reach_stdout_or_stderr(runpod: FakeRunPod, tmp_path: Path) -> None:
    """Real processes, every secret set, and a server that echoes the key back in its error."""
    secrets = {
        "RUNPOD_API_KEY": API_KEY,
        "CIVITAI_TOKEN": "civitai_SECRET_aa11",
        "HF_TOKEN": "hf_SECRET_bb22",
        "FILEBROWSER_PASSWORD": "fb_SECRET_cc33",
    }
    env = {**os.environ, **secrets, "RUNPOD_API_URL": runpod.url}
    command = [sys.executable, "-m", "ignition", "template", "--output-dir", str(tmp_path)]
    runs = [subprocess.run([*command, "--deploy"], env=env, capture_output=True, text=True)]
    runpod.scripted.append(Scripted(401, f"token {API_KEY} has expired"))
    runs.append(subprocess.run([*command, "--deploy"], env=env, capture_output=True, text=True))
    runs.append(subprocess.run([*command, "--dry-run"], env=env, capture_output=True, text=True))
    assert [r.returncode for r in runs] == [0, 2, 0]
    assert "token ******** has expired" in runs[1].stderr
    written = "".join(p.read_text(encoding="utf-8") for p in tmp_path.iterdir())
    for run in runs:
        for value in secrets.values():
            assert value not in run.stdout + run.stderr
    for value in secrets.values():
        assert value not in written
