"""The ComfyUI front door: the real Caddy on loopback in front of the ComfyUI stand-in."""

from __future__ import annotations

import base64
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from ignition import credentials
from ignition.errors import ConfigError
from ignition.run import frontdoor
from ignition.run.access import comfyui_access_lines
from ignition.settings import Settings, load_settings
from support import answers, free_port, http_status, require_tool, wait_for

STANDIN = Path(__file__).parent / "standins" / "comfyui_ws.py"
FOREIGN = "https://other-pod-8188.proxy.runpod.net"


def _start_standin(host: str, port: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, str(STANDIN), "--host", host, "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert int(process.stdout.readline()) == port
    return process


def _stop(process: subprocess.Popen[Any]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass
class Door:
    settings: Settings
    url: str
    token: str
    password: str
    session: str
    upstream_port: int
    upstream: subprocess.Popen[str]
    caddy: subprocess.Popen[bytes]
    log: Path

    def cookie(self, value: str | None = None) -> dict[str, str]:
        return {"Cookie": f"other=1; {frontdoor.COOKIE_NAME}={value or self.session}"}

    def basic(self, password: str | None = None) -> dict[str, str]:
        raw = f"{frontdoor.USERNAME}:{password or self.password}".encode()
        return {"Authorization": "Basic " + base64.b64encode(raw).decode()}

    def bearer(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}


@pytest.fixture(scope="module")
def door(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Door]:
    require_tool("caddy")
    root = tmp_path_factory.mktemp("frontdoor")
    settings = load_settings(
        workspace=root / "workspace",
        run_dir=root / "run",
        home=root / "home",
        comfyui_port=free_port(),
        comfyui_internal_port=free_port(),
        comfyui_auth=True,
        runpod_pod_id="testpod",
    )
    host, upstream_port = frontdoor.comfyui_bind(settings)
    spec = frontdoor.frontdoor_service(settings, listen_host="127.0.0.1")
    assert spec is not None and spec.ready_url is not None
    upstream = _start_standin(host, upstream_port)
    log = root / "caddy.log"
    with log.open("wb") as sink:
        caddy = subprocess.Popen(
            spec.argv, env={**os.environ, **spec.env}, cwd=spec.cwd, stdout=sink, stderr=sink
        )
    token = credentials.comfyui_api_token(settings).value
    password = credentials.comfyui_password(settings).value
    door = Door(
        settings=settings,
        url=f"http://127.0.0.1:{settings.comfyui_port}",
        token=token,
        password=password,
        session=frontdoor.session_value(token, password),
        upstream_port=upstream_port,
        upstream=upstream,
        caddy=caddy,
        log=log,
    )
    try:
        wait_for(lambda: answers(spec.ready_url), 15, "the front door to answer", interval_s=0.05)
        yield door
    finally:
        _stop(door.caddy)
        _stop(door.upstream)  # a test restarts it: stop the current one


async def _get(
    url: str, headers: dict[str, str] | None = None
) -> tuple[int, Mapping[str, str], bytes]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers=headers or {}, allow_redirects=False) as response,
    ):
        return response.status, response.headers, await response.read()


async def test_without_credentials_is_a_bare_401(door: Door) -> None:
    for path in ("/", "/system_stats", "/view?filename=x.png", "/ws"):
        status, headers, _ = await _get(door.url + path, {"Accept": "text/html"})
        assert status == 401, path
        assert "Set-Cookie" not in headers
        assert "Location" not in headers  # never a redirect to a login page
        assert headers["WWW-Authenticate"].startswith("Basic ")


@pytest.mark.parametrize(
    "how", ["basic", "bearer", "cookie", "token", "bearer-lowercase", "token-among-params"]
)
async def test_each_credential_opens_the_door(door: Door, how: str) -> None:
    path, headers = {
        "basic": ("/_request", door.basic()),
        "bearer": ("/_request", door.bearer()),
        "bearer-lowercase": ("/_request", {"Authorization": f"bearer {door.token}"}),
        "cookie": ("/_request", door.cookie()),
        "token": (f"/_request?token={door.token}", {}),
        "token-among-params": (f"/_request?a=1&token={door.token}&b=2", {}),
    }[how]
    status, _, body = await _get(door.url + path, headers)
    assert status == 200, body
    seen = json.loads(body)
    # The upstream gets the Host the client used, and never the credentials.
    assert seen["host"] == f"127.0.0.1:{door.settings.comfyui_port}"
    assert not seen["authorization"]
    assert door.token not in seen["path_qs"]
    if how == "token-among-params":
        assert seen["path_qs"] == "/_request?a=1&b=2"
    for resource in ("/system_stats", "/view?filename=a.png"):
        url = door.url + resource
        if how.startswith("token"):
            url += ("&" if "?" in resource else "?") + f"token={door.token}"
        status, _, _ = await _get(url, headers)
        assert status == 200, resource


@pytest.mark.parametrize(
    "how", ["basic", "bearer", "cookie", "token", "basic-other-user", "empty-bearer"]
)
async def test_wrong_credentials_get_401_without_cookie(door: Door, how: str) -> None:
    wrong = door.token[:-1] + ("A" if door.token[-1] != "A" else "B")
    path, headers = {
        "basic": ("/system_stats", door.basic("not-the-password")),
        "basic-other-user": (
            "/system_stats",
            {
                "Authorization": "Basic "
                + base64.b64encode(f"root:{door.password}".encode()).decode()
            },
        ),
        "bearer": ("/system_stats", door.bearer(wrong)),
        "empty-bearer": ("/system_stats", {"Authorization": "Bearer "}),
        "cookie": ("/system_stats", door.cookie(frontdoor.session_value(wrong, door.password))),
        "token": (f"/system_stats?token={wrong}", {"Accept": "text/html"}),
    }[how]
    status, response_headers, _ = await _get(door.url + path, headers)
    assert status == 401
    assert "Set-Cookie" not in response_headers


async def test_basic_login_sets_a_session_cookie_that_hides_the_secrets(door: Door) -> None:
    status, headers, _ = await _get(door.url + "/", door.basic())
    assert status == 200
    cookie = headers["Set-Cookie"]
    attributes = [part.strip() for part in cookie.split(";")]
    assert attributes[0] == f"{frontdoor.COOKIE_NAME}={door.session}"
    assert {"HttpOnly", "SameSite=Lax", "Path=/"} <= set(attributes)
    assert not any(a.lower().startswith("domain") for a in attributes)  # host-only
    assert "Secure" not in attributes  # plain http: a Secure cookie would not be stored
    assert door.token not in cookie and door.password not in cookie
    status, headers, _ = await _get(door.url + "/", {**door.basic(), "X-Forwarded-Proto": "https"})
    assert "Secure" in [part.strip() for part in headers["Set-Cookie"].split(";")]


@pytest.mark.parametrize(
    "navigation", [{"Accept": "text/html,application/xhtml+xml"}, {"Sec-Fetch-Dest": "document"}]
)
async def test_token_link_in_a_browser_trades_the_token_for_a_cookie(
    door: Door, navigation: dict[str, str]
) -> None:
    status, headers, _ = await _get(
        f"{door.url}/?a=1&token={door.token}&b=2", {**navigation, "X-Forwarded-Proto": "https"}
    )
    assert status == 302
    assert headers["Location"] == "/?a=1&b=2"
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"{frontdoor.COOKIE_NAME}={door.session};")
    assert "Secure" in cookie and door.token not in cookie
    status, _, _ = await _get(door.url + headers["Location"], {**navigation, **door.cookie()})
    assert status == 200


async def test_api_client_with_token_is_just_served(door: Door) -> None:
    status, headers, _ = await _get(f"{door.url}/system_stats?token={door.token}")
    assert status == 200
    assert "Set-Cookie" not in headers


@pytest.mark.parametrize("how", ["cookie", "token", "bearer", "basic"])
async def test_websocket_passes_with_credentials(door: Door, how: str) -> None:
    query, headers = {
        "cookie": ("", door.cookie()),
        "token": (f"&token={door.token}", {}),
        "bearer": ("", door.bearer()),
        "basic": ("", door.basic()),
    }[how]
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"{door.url}/ws?clientId=abc{query}",
            headers=headers,
            origin=f"https://127.0.0.1:{door.settings.comfyui_port}",
        ) as ws,
    ):
        hello = await ws.receive_json(timeout=5)
        assert hello["data"]["sid"] == "abc"
        await ws.send_bytes(b"\x01preview")  # ComfyUI sends previews as binary frames
        assert await ws.receive_bytes(timeout=5) == b"\x01preview"


@pytest.mark.parametrize(
    ("headers_of", "status"),
    [("none", 401), ("foreign-origin", 403), ("foreign-origin-token", 403)],
)
async def test_websocket_refused_without_credentials_or_from_another_origin(
    door: Door, headers_of: str, status: int
) -> None:
    headers, query = {
        "none": ({}, ""),
        "foreign-origin": ({**door.cookie(), "Origin": FOREIGN}, ""),
        "foreign-origin-token": ({"Origin": FOREIGN}, f"&token={door.token}"),
    }[headers_of]
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"{door.url}/ws?clientId=x{query}", headers=headers)
    assert refused.value.status == status
    assert "Set-Cookie" not in (refused.value.headers or {})


@pytest.mark.parametrize(
    "origin",
    [
        FOREIGN,
        "http://127.0.0.2:8188",
        "null",
        "https://127.0.0.1.evil.example",
    ],
)
async def test_foreign_origin_is_refused_even_with_valid_credentials(
    door: Door, origin: str
) -> None:
    for credential in (door.cookie(), door.bearer(), door.basic()):
        status, headers, _ = await _get(door.url + "/_request", {**credential, "Origin": origin})
        assert status == 403
        assert "Set-Cookie" not in headers


@pytest.mark.parametrize("site", ["same-site", "cross-site"])
async def test_another_sites_subresource_needs_the_token(door: Door, site: str) -> None:
    # <img src="https://your-pod/view?..."> on another pod's page: no Origin, cookie attached.
    embedded = {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
    for ambient in (door.cookie(), door.basic()):
        status, headers, _ = await _get(door.url + "/view?filename=a.png", {**embedded, **ambient})
        assert status == 403
        assert "Set-Cookie" not in headers
    status, _, _ = await _get(f"{door.url}/view?filename=a.png&token={door.token}", embedded)
    assert status == 200
    # A link followed from elsewhere (RunPod's console, the file browser) still gets in.
    followed = {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
    status, _, _ = await _get(door.url + "/", {**followed, **door.cookie()})
    assert status == 200


async def test_own_origin_is_accepted_in_http_and_https_form(door: Door) -> None:
    # RunPod's proxy ends TLS: the browser says https, Caddy sees the same host over http.
    pod_host = "abc123-8188.proxy.runpod.net"
    for origin in (f"https://{pod_host}", f"http://{pod_host}"):
        status, _, body = await _get(
            door.url + "/_request", {**door.cookie(), "Host": pod_host, "Origin": origin}
        )
        assert status == 200
        assert json.loads(body)["host"] == pod_host
    # Whatever Host RunPod's proxy sends, the pod's own public URL is its own origin.
    public = frontdoor.comfyui_public_url(door.settings)
    assert public == f"https://testpod-{door.settings.comfyui_port}.proxy.runpod.net"
    status, _, _ = await _get(door.url + "/_request", {**door.cookie(), "Origin": public})
    assert status == 200


def test_comfyui_listens_on_loopback_only(door: Door) -> None:
    assert frontdoor.comfyui_bind(door.settings) == ("127.0.0.1", door.upstream_port)
    assert http_status(f"http://127.0.0.1:{door.upstream_port}/system_stats") == 200
    others = ["127.0.0.2"] + [
        address.address
        for addresses in psutil.net_if_addrs().values()
        for address in addresses
        if address.family == socket.AF_INET and not address.address.startswith("127.")
    ]
    for host in others:
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection((host, door.upstream_port), 2),
        ):
            pass


async def test_sessions_survive_a_comfyui_restart(door: Door) -> None:
    _stop(door.upstream)
    status, _, body = await _get(f"{door.url}/system_stats?token={door.token}")
    assert status == 502  # Caddy stays up; ComfyUI's frontend reconnects once it is back
    assert b"restarting" in body
    door.upstream = _start_standin("127.0.0.1", door.upstream_port)
    status, _, _ = await _get(door.url + "/system_stats", door.cookie())
    assert status == 200


def test_no_secret_in_process_list_environment_or_logs(door: Door) -> None:
    secrets_ = [door.token, door.password, door.session]
    process = psutil.Process(door.caddy.pid)
    visible = " ".join(process.cmdline()) + " ".join(process.environ().values())
    assert not [s for s in secrets_ if s in visible]
    log = door.log.read_text()
    assert "serving initial configuration" in log
    assert not [s for s in secrets_ if s in log]
    config = frontdoor.frontdoor_dir(door.settings) / "caddy.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    assert door.password not in config.read_text()  # only its bcrypt hash
    # Caddy's own dotfiles land under the run dir, not in HOME.
    assert not door.settings.home.exists() or not any(door.settings.home.iterdir())
    assert not (frontdoor.frontdoor_dir(door.settings) / "home" / ".config" / "caddy").exists()


def test_access_lines_from_scripts_really_work(door: Door) -> None:
    lines = comfyui_access_lines(door.settings, show_token=True)
    assert any(door.token in line for line in lines)
    status_lines = comfyui_access_lines(door.settings, show_token=False)
    assert not any(door.token in line or door.password in line for line in status_lines)
    python_line = next(line for line in lines if line.strip().startswith("python3 -c"))
    env = {**os.environ, "COMFYUI_API_TOKEN": door.token}
    command = python_line.strip().replace("python3", sys.executable, 1)
    result = subprocess.run(
        ["bash", "-c", command.replace(frontdoor.comfyui_public_url(door.settings), door.url)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "standin" in result.stdout


def test_auth_off_leaves_comfyui_on_the_public_port(tmp_path: Path) -> None:
    settings = load_settings(workspace=tmp_path, run_dir=tmp_path / "run", comfyui_auth=False)
    assert frontdoor.frontdoor_service(settings) is None
    assert frontdoor.comfyui_bind(settings) == ("0.0.0.0", 8188)
    assert not (tmp_path / "run").exists()
    assert any("OFF" in line for line in comfyui_access_lines(settings, show_token=True))


def test_default_internal_port_and_its_limits(tmp_path: Path) -> None:
    assert frontdoor.comfyui_bind(load_settings(workspace=tmp_path)) == ("127.0.0.1", 18188)
    with pytest.raises(ConfigError, match="COMFYUI_INTERNAL_PORT"):
        frontdoor.internal_port(load_settings(workspace=tmp_path, comfyui_port=60000))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"comfyui_api_token": "short"}, "at least 24"),
        ({"comfyui_api_token": "x" * 30 + '";\r\nSet-Cookie: a=b'}, "at least 24"),
        ({"comfyui_password": "p" * 73}, "longer than 72"),
    ],
)
def test_unusable_secrets_are_refused_with_a_hint(
    tmp_path: Path, overrides: dict[str, str], message: str
) -> None:
    require_tool("caddy")
    settings = load_settings(workspace=tmp_path, run_dir=tmp_path / "run", **overrides)
    with pytest.raises(ConfigError, match=message):
        frontdoor.frontdoor_service(settings)


def test_missing_caddy_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="apt-get install caddy") as error:
        frontdoor.frontdoor_service(load_settings(workspace=tmp_path))
    assert "COMFYUI_AUTH=off" in error.value.hint
