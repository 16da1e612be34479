"""The supervisor's parts on their own: ComfyUI's argv, Manager config, masking, scripts, stop."""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from ignition.errors import ConfigError
from ignition.run.child import Child
from ignition.run.comfyui import Listen, comfyui_service, overridden_flags
from ignition.run.manager_config import manager_config_path, write_manager_config
from ignition.run.pod_scripts import write_pod_scripts
from ignition.run.service import ServiceSpec
from ignition.run.startup_log import MASK, MaskingFormatter, known_secrets
from ignition.run.supervisor import Service, Supervisor
from ignition.settings import Settings, load_settings
from pod_harness import STANDIN_DIR
from support import free_port, require_tool


def _settings(tmp_path: Path, **values: object) -> Settings:
    defaults: dict[str, object] = {
        "workspace": tmp_path / "ws",
        "comfyui_dir": STANDIN_DIR,
        "run_dir": tmp_path / "run",
        "bin_dir": tmp_path / "bin",
        "comfyui_port": 8188,
    }
    return load_settings(**{**defaults, **values})


def test_comfyui_argv_puts_own_flags_last(tmp_path: Path) -> None:
    settings = _settings(tmp_path, comfy_flags='--cpu --preview-method "auto" --port 1')
    spec = comfyui_service(
        settings,
        listen=Listen("127.0.0.1", 18188),
        ui_enabled=False,
        extra_args=("--extra-model-paths-config", "/x.yaml"),
    )
    assert spec.argv == (
        settings.comfyui_python,
        "main.py",
        "--cpu",
        "--preview-method",
        "auto",
        "--port",
        "1",
        "--enable-manager",
        "--disable-manager-ui",
        "--extra-model-paths-config",
        "/x.yaml",
        "--database-url",
        f"sqlite:///{tmp_path / 'ws' / 'ComfyUI' / 'user' / 'comfyui.db'}",
        "--base-directory",
        str(tmp_path / "ws" / "ComfyUI"),
        "--listen",
        "127.0.0.1",
        "--port",
        "18188",
    )
    assert spec.cwd == STANDIN_DIR
    assert spec.ready_url == "http://127.0.0.1:18188/system_stats"
    assert spec.env["__COMFY_CLI_SESSION__"] == str(tmp_path / "run" / "comfyui-session")
    assert overridden_flags(settings) == ["--port"]


def test_comfyui_without_manager_flags_gets_none(tmp_path: Path) -> None:
    old = tmp_path / "old-comfyui"
    (old / "comfy").mkdir(parents=True)
    (old / "comfy" / "cli_args.py").write_text('parser.add_argument("--cpu")\n')
    settings = _settings(tmp_path, comfyui_dir=old, runpod_pod_id="abc123")
    spec = comfyui_service(settings, listen=Listen("0.0.0.0", 8188), ui_enabled=True)
    assert "--enable-manager" not in spec.argv and "--database-url" not in spec.argv
    assert spec.public_url == "https://abc123-8188.proxy.runpod.net"


def test_unbalanced_quote_in_comfy_flags_is_a_config_error(tmp_path: Path) -> None:
    settings = _settings(tmp_path, comfy_flags='--preview-method "auto')
    with pytest.raises(ConfigError, match="COMFY_FLAGS"):
        comfyui_service(settings, listen=Listen("0.0.0.0", 8188), ui_enabled=False)


def test_manager_config_keeps_user_keys(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    path = manager_config_path(settings)
    assert path == tmp_path / "ws" / "ComfyUI" / "user" / "__manager" / "config.ini"
    path.parent.mkdir(parents=True)
    path.write_text("[default]\nsecurity_level = weak\nnetwork_mode = personal_cloud\n")

    def mode() -> str:
        config = configparser.ConfigParser()
        config.read(path)
        assert config["default"]["security_level"] == "weak"
        return config["default"]["network_mode"]

    write_manager_config(settings, ui_enabled=True)
    assert mode() == "personal_cloud"
    write_manager_config(settings, ui_enabled=False)
    assert mode() == "offline"
    write_manager_config(settings, ui_enabled=True)
    assert mode() == "public"


def test_masking_covers_settings_stored_secrets_and_url_forms(tmp_path: Path) -> None:
    stored = tmp_path / "ws" / ".ignition" / "secrets.json"
    stored.parent.mkdir(parents=True)
    stored.write_text('{"filebrowser_password": "gen-pass-123"}')
    settings = _settings(tmp_path, hf_token="hf_abc/def+g")
    secrets = known_secrets(settings)
    assert {"hf_abc/def+g", "gen-pass-123"} <= set(secrets)

    formatter = MaskingFormatter(secrets)
    message = "url ?token=hf_abc%2Fdef%2Bg and hf_abc/def+g, password gen-pass-123"
    record = logging.LogRecord("ignition", logging.INFO, __file__, 1, message, None, None)
    text = formatter.format(record)
    assert "hf_abc" not in text and "gen-pass" not in text
    assert text.count(MASK) == 3


def test_pod_scripts_pass_shellcheck_and_call_ignition(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    written = write_pod_scripts(settings)
    assert {p.relative_to(tmp_path).as_posix() for p in written} == {
        "ws/scripts/restart-comfyui.sh",
        "ws/scripts/stop-pod.sh",
        "ws/scripts/privacy/show-connections.sh",
        "bin/nuke",
    }
    subprocess.run([require_tool("shellcheck"), *map(str, written)], check=True)
    # The script reaches the real CLI (no supervisor here: exit code 3 says so).
    env = {**os.environ, "IGNITION_RUN_DIR": str(tmp_path / "run")}
    result = subprocess.run(
        [str(written[0]), "--help"], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "usage: ignition restart" in result.stdout


async def test_child_that_ignores_sigterm_is_killed_with_its_group() -> None:
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "helper = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(helper.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    spec = ServiceSpec(name="stubborn", argv=(sys.executable, "-c", script))
    child = await Child.start(spec, dict(os.environ))
    while not child.tail:
        await asyncio.sleep(0.05)
    helper = int(child.tail[0])
    assert await child.stop(grace_s=0.5) == -9
    await asyncio.sleep(0.1)
    # Reparented to init once its parent died; only init's reaping is left (tini, in the image).
    with contextlib.suppress(psutil.NoSuchProcess):
        assert psutil.Process(helper).status() == psutil.STATUS_ZOMBIE


def _service(name: str, code: str, ready_url: str | None) -> Service:
    spec = ServiceSpec(name=name, argv=(sys.executable, "-c", code), ready_url=ready_url)
    return Service(name, lambda: spec)


async def test_crashes_after_becoming_ready_are_restarted_not_given_up() -> None:
    supervisor_ = Supervisor(dict(os.environ), first_delay_s=0.01)
    # Ready at once (no URL to poll), then crashes: each run was a working one.
    flaky = _service("flaky", "import time; time.sleep(0.2); raise SystemExit(1)", None)
    # Exits before its ready URL (a closed port) ever answers: a crash loop.
    broken = _service("broken", "raise SystemExit(2)", f"http://127.0.0.1:{free_port()}/")
    for service in (flaky, broken):
        supervisor_.add(service)
        supervisor_.launch(service.name)

    async def settled() -> None:
        while broken.state != "failed" or (flaky.crashes < 4 and flaky.state != "failed"):
            await asyncio.sleep(0.05)

    await asyncio.wait_for(settled(), 20)
    assert flaky.state != "failed" and flaky.crashes >= 4 and broken.crashes == 3
    assert broken.error is not None and "check COMFY_FLAGS" in broken.error
    await supervisor_.stop_all()
    assert flaky.state == "stopped"
