"""`ignition start` with everything on: file browser, password front door, privacy."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from pod_harness import Pod, make_pod
from support import free_port, http_status, require_tool, wait_for

_CIVITAI_TOKEN = "civitai-token-5151"
_HF_TOKEN = "hf_token_6262"


@pytest.fixture
def pod(tmp_path: Path) -> Iterator[Pod]:
    require_tool("caddy")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    started = make_pod(
        tmp_path,
        FILEBROWSER_ENABLED="true",
        COMFYUI_AUTH="true",
        PRIVACY_MODE="on",
        COMFYUI_INTERNAL_PORT=str(free_port()),
        CIVITAI_TOKEN=_CIVITAI_TOKEN,
        HF_TOKEN=_HF_TOKEN,
    )
    yield started
    started.kill()


def _last_block(output: str) -> list[str] | None:
    """The lines between the last two rules of the access block, None until it is printed."""
    lines = [line.split(" ", 2)[-1] for line in output.splitlines()]  # drop the timestamp
    rules = [i for i, line in enumerate(lines) if line == "=" * 72]
    if len(rules) < 2:
        return None
    block = lines[rules[-2] + 1 : rules[-1]]
    return block if block and block[0] == "Ignition is up. How to reach this pod:" else None


def _status_code(port: int, path: str, token: str | None = None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return http_status(f"http://127.0.0.1:{port}{path}", headers, timeout_s=10)


def test_file_browser_front_door_and_privacy(pod: Pod) -> None:
    pod.start()

    def all_ready() -> dict[str, dict[str, object]] | None:
        services: dict[str, dict[str, object]] = pod.status().get("services", {})
        names = {"comfyui", "filebrowser", "frontdoor"}
        ok = names <= services.keys() and all(services[n]["ready"] for n in names)
        return services if ok else None

    services = wait_for(all_ready, 30, "ComfyUI, file browser and front door ready")

    secrets = json.loads((pod.workspace / ".ignition" / "secrets.json").read_text())
    password, token = secrets["filebrowser_password"], secrets["comfyui_api_token"]
    block = wait_for(lambda: _last_block(pod.output.read_text()), 10, "the access block")
    # Generated: shown once on stdout (the container log), masked in the start-up log file.
    assert pod.output.read_text().count(password) == 1
    assert password not in pod.startup_log and token not in pod.startup_log
    # The block is the last thing on stdout and says everything needed to get in.
    assert pod.output.read_text().rstrip().endswith(f"{block[-1]}\n{pod.output_tail(1)}")
    assert pod.output_tail(1).endswith("=" * 72)
    text = "\n".join(block)
    assert f"ComfyUI: http://localhost:{pod.port}" in text
    assert f"File browser: http://localhost:{pod.env['FILEBROWSER_PORT']}/  user: admin" in text
    assert password in text and f"export COMFYUI_API_TOKEN={token}" in text
    assert "Models: all in place" in text
    # Third-party banners (copyparty's, Caddy's JSON) are in the log file only.
    assert "[filebrowser]" not in pod.output.read_text()
    assert "[frontdoor]" not in pod.output.read_text()
    assert "[filebrowser]" in pod.startup_log

    # ComfyUI itself listens on loopback; the public port answers only with credentials.
    internal = pod.env["COMFYUI_INTERNAL_PORT"]
    assert pod.get_from(int(internal), "/system_stats")["system"]["argv"][-4:] == [
        "--listen",
        "127.0.0.1",
        "--port",
        internal,
    ]
    assert _status_code(pod.port, "/system_stats") == 401
    assert _status_code(pod.port, "/system_stats", token) == 200
    assert "0.0.0.0 telemetry.stability.ai" in Path(pod.env["IGNITION_HOSTS_FILE"]).read_text()

    children = [psutil.Process(services[n]["pid"]) for n in services]  # type: ignore[arg-type]
    # No child holds a token it does not need (Caddy and copyparty read theirs from 0600 files;
    # ComfyUI needs none), nor any of the generated credentials.
    for child in children:
        environ = child.environ()
        assert not {"CIVITAI_TOKEN", "HF_TOKEN", "FILEBROWSER_PASSWORD"} & environ.keys(), child
        values = "\n".join(environ.values())
        for secret in (_CIVITAI_TOKEN, _HF_TOKEN, password, token):
            assert secret not in values, (child.name(), secret)
    assert "PATH" in children[0].environ()
    assert pod.cli("stop").returncode == 0
    assert pod.wait_exit() == 0
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
