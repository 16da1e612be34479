"""Attacks on the running pod (issue 20, run side), each reproduced against the real parts:
the nuke, the supervisor, Caddy, copyparty, log files in a shared /tmp."""

from __future__ import annotations

import http.client
import json
import logging
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ignition import credentials
from ignition.privacy import monitor
from ignition.run import frontdoor
from ignition.run.filebrowser import filebrowser_announcement, filebrowser_service
from ignition.run.startup_log import configure_startup_logging
from ignition.settings import Settings, load_settings
from pod_harness import Pod, make_pod
from support import free_port, http_status, require_tool, wait_for
from test_filebrowser import _basic as basic
from test_filebrowser import _request as browser_request
from test_filebrowser import _running as running_copyparty
from unprivileged import reachable_dir, run_unprivileged

BROWSER_PASSWORD = "Kq7-vorpal-Zephyr-91-lantern"
BROWSER_AUTH = basic("admin", BROWSER_PASSWORD)
WS_STANDIN = Path(__file__).parent / "standins" / "comfyui_ws.py"
DEPTH = 3000  # far past Python's recursion limit; one file-browser upload makes ~330 levels


def deep_tree(top: Path, depth: int = DEPTH) -> None:
    """`top/d/d/…/d/leaf.png`, built relative to each folder (the path is longer than PATH_MAX)."""
    top.mkdir(parents=True, exist_ok=True)
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        os.close(os.open("leaf.png", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd))
    finally:
        os.close(fd)


# --- item 2: a deep tree must not stop the nuke ----------------------------------------------


def test_nuke_cli_wipes_a_tree_deeper_than_the_recursion_limit(tmp_path: Path) -> None:
    pod = make_pod(tmp_path)
    comfy = pod.workspace / "ComfyUI"
    deep_tree(comfy / "output" / "deep")
    model = comfy / "models" / "checkpoints" / "model.safetensors"
    model.parent.mkdir(parents=True)
    model.write_bytes(b"weights")
    (comfy / "custom_nodes").mkdir()
    (comfy / "custom_nodes" / "kept.py").write_text("kept")
    result = pod.cli("nuke", "--yes")
    assert result.returncode == 0, result.stderr
    assert "RecursionError" not in result.stderr
    assert f"{DEPTH + 1} folders" in result.stdout  # the chain of d/ and deep/ itself
    assert list((comfy / "output").iterdir()) == []
    assert not model.exists()
    assert (comfy / "models" / "checkpoints").is_dir()  # the layout stays
    assert (comfy / "custom_nodes" / "kept.py").exists()


def test_hard_stop_nukes_a_deep_tree_and_removes_the_control_socket(
    pods: list[Pod], tmp_path: Path
) -> None:
    pod = make_pod(tmp_path)
    pods.append(pod)
    pod.start()
    pod.wait_ready()
    comfy = pod.workspace / "ComfyUI"
    deep_tree(comfy / "output" / "deep")
    model = comfy / "models" / "checkpoints" / "model.safetensors"
    model.parent.mkdir(parents=True, exist_ok=True)
    model.write_bytes(b"weights")
    stop = pod.cli("stop")
    assert stop.returncode == 0, stop.stderr
    assert pod.wait_exit() == 0
    assert not model.exists()
    assert list((comfy / "output").iterdir()) == []
    assert not (Path(pod.env["IGNITION_RUN_DIR"]) / "control.sock").exists()
    assert "Nuclear cleanup complete" in pod.startup_log


# --- item 15 (second half): values the nuke must refuse ---------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("IGNITION_TMP_DIR", "/etc", "IGNITION_TMP_DIR='/etc' is refused"),
        ("IGNITION_TMP_DIR", "/usr", "IGNITION_TMP_DIR='/usr' is refused"),
        ("IGNITION_TMP_DIR", "/usr/local/lib", "is a system folder"),
        ("WORKSPACE", "", "WORKSPACE is set but empty"),
        ("WORKSPACE", "  ", "must be an absolute path"),
        ("WORKSPACE", "relative/ws", "must be an absolute path"),
    ],
)
def test_the_nuke_refuses_system_folders_and_an_empty_workspace(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    pod = make_pod(tmp_path)
    kept = pod.workspace / "ComfyUI" / "output" / "kept.png"
    kept.parent.mkdir(parents=True)
    kept.write_bytes(b"png")
    result = subprocess.run(
        [sys.executable, "-m", "ignition", "nuke", "--yes"],
        env={**pod.env, variable: value},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert says in result.stderr
    assert "Traceback" not in result.stderr
    assert kept.exists()


# --- item 12: logs in a shared /tmp trust nothing a neighbour left there ------------------------


@contextmanager
def shared_tmp() -> Iterator[Path]:
    """A sticky, world-writable folder like /tmp, inside a fresh temp dir."""
    with reachable_dir() as base:
        shared = base / "tmp"
        shared.mkdir()
        shared.chmod(0o1777)
        yield shared


def _plant_link(link: Path, target: Path) -> Callable[[], None]:
    return lambda: link.symlink_to(target)


def _plant_open_file(path: Path) -> Callable[[], None]:
    def plant() -> None:
        path.write_text("forged line\n")
        path.chmod(0o666)

    return plant


def _log_both(settings: Settings) -> None:
    logging.getLogger("ignition.test").info("pod started")
    record = monitor.ConnectionRecord(
        seen_at=datetime.now(UTC),
        protocol="tcp",
        remote_ip="203.0.113.7",
        remote_port=443,
        local_port=5000,
        pid=None,
        process_name="python3",
    )
    assert monitor.append([record], settings.connections_log) == 1


@pytest.mark.parametrize("attack", ["symlink", "world-writable file"])
def test_logs_in_a_shared_tmp_ignore_what_a_neighbour_planted(tmp_path: Path, attack: str) -> None:
    with shared_tmp() as shared:
        precious = tmp_path / "precious"  # root's file, out of the neighbour's reach
        precious.write_text("root's data\n")
        startup, connections = shared / "ignition_startup.log", shared / "connections.log"
        for path in (startup, connections):
            plant = _plant_link(path, precious) if attack == "symlink" else _plant_open_file(path)
            run_unprivileged(plant)
        settings = load_settings(
            workspace=tmp_path / "ws", startup_log=startup, connections_log=connections
        )
        configure_startup_logging(settings)
        try:
            _log_both(settings)
        finally:
            for handler in logging.getLogger("ignition").handlers:
                handler.close()
            logging.getLogger("ignition").handlers.clear()
        assert precious.read_text() == "root's data\n"
        for path, line in ((startup, "pod started"), (connections, "203.0.113.7:443")):
            info = path.lstat()
            assert stat.S_ISREG(info.st_mode)
            assert info.st_uid == os.geteuid()
            assert stat.S_IMODE(info.st_mode) == 0o600
            text = path.read_text()
            assert line in text
            assert "forged line" not in text


# --- items 7, 9 and WebDAV: the file browser, real copyparty ------------------------------------


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[tuple[Settings, int]]:
    workspace = tmp_path / "workspace"
    (workspace / "ComfyUI" / "models" / "checkpoints").mkdir(parents=True)
    (workspace / "ComfyUI" / "models" / "checkpoints" / "base.safetensors").write_bytes(b"w" * 64)
    settings = load_settings(
        workspace=workspace,
        run_dir=tmp_path / "run",
        filebrowser_port=free_port(),
        filebrowser_password=BROWSER_PASSWORD,
    )
    spec = filebrowser_service(settings, bind="127.0.0.1")
    assert spec is not None
    with running_copyparty(spec, tmp_path / "copyparty.log"):
        yield settings, settings.filebrowser_port


def test_no_link_in_the_workspace_reaches_the_secrets(browser: tuple[Settings, int]) -> None:
    settings, port = browser
    store = credentials.secrets_file(settings)
    store.write_text('{"comfyui_api_token": "stored-secret-token"}')
    workspace = settings.workspace
    (workspace / "peek").symlink_to(".ignition")  # what any workspace user can make
    (workspace / "ComfyUI" / "deep-peek").symlink_to("../.ignition")
    (workspace / "token.json").symlink_to(".ignition/secrets.json")
    for path in ("/peek/secrets.json", "/ComfyUI/deep-peek/secrets.json", "/token.json", "/peek/"):
        for query in ("", "?ls", "?zip"):
            status, body = browser_request(port, "GET", path + query, BROWSER_AUTH)
            assert status >= 400, path + query
            assert b"stored-secret-token" not in body
    status, _ = browser_request(port, "PUT", "/peek/planted.json", BROWSER_AUTH, b"{}")
    assert status >= 400
    status, _ = browser_request(port, "POST", "/peek/secrets.json?delete", BROWSER_AUTH)
    assert status >= 400
    status, _ = browser_request(
        port, "POST", "/peek/secrets.json?move=/ComfyUI/stolen.json", BROWSER_AUTH
    )
    assert status >= 400
    assert sorted(p.name for p in store.parent.iterdir()) == ["secrets.json"]
    assert "stored-secret-token" in store.read_text()
    # The rest of the workspace is served as before.
    status, body = browser_request(port, "GET", "/ComfyUI/models/checkpoints/?ls", BROWSER_AUTH)
    assert status == 200 and b"base.safetensors" in body


def test_guessing_never_locks_the_owner_out_behind_a_shared_proxy(
    browser: tuple[Settings, int],
) -> None:
    _, port = browser
    # Behind RunPod's proxy the guesser and the owner share one source address: 127.0.0.1 here.
    for attempt in range(40):
        status, _ = browser_request(port, "GET", "/ComfyUI/?ls", basic("admin", f"guess-{attempt}"))
        assert status in (401, 403)
    status, body = browser_request(port, "GET", "/ComfyUI/?ls", BROWSER_AUTH)
    assert status == 200 and b"models" in body


@pytest.mark.parametrize(
    "destination", ["/ComfyUI/a.txt", "/ComfyUI/./a.txt", "/ComfyUI/../ComfyUI/a.txt", "../a.txt"]
)
def test_a_webdav_move_onto_itself_deletes_nothing(
    browser: tuple[Settings, int], destination: str
) -> None:
    settings, port = browser
    victim = settings.workspace / "ComfyUI" / "a.txt"
    victim.write_text("keep me")
    for method in ("MOVE", "COPY"):
        headers = {**BROWSER_AUTH, "Destination": destination, "Overwrite": "T"}
        status, _ = browser_request(port, method, "/ComfyUI/a.txt", headers)
        assert status >= 400
        assert victim.read_text() == "keep me"
    # Renaming from the web page (no overwrite) still works.
    status, _ = browser_request(port, "POST", "/ComfyUI/a.txt?move=/ComfyUI/b.txt", BROWSER_AUTH)
    assert status == 201
    assert (settings.workspace / "ComfyUI" / "b.txt").read_text() == "keep me"


# --- items 3, 4, 8: the ComfyUI front door, real Caddy ------------------------------------------


@dataclass
class FrontDoor:
    settings: Settings
    port: int

    def ask(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            return Answer(response.status, dict(response.getheaders()), response.read())
        finally:
            connection.close()

    def session(self, path: str = "/_request") -> str:
        """Log in with Basic once and return the `Cookie:` value the browser would send."""
        password = credentials.comfyui_password(self.settings).value
        answer = self.ask(path, basic("admin", password))
        assert answer.status == 200
        return answer.headers["Set-Cookie"].split(";")[0]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@contextmanager
def running_frontdoor(settings: Settings, log: Path) -> Iterator[FrontDoor]:
    """Caddy from the real ServiceSpec, in front of the websocket-capable ComfyUI stand-in."""
    require_tool("caddy")
    spec = frontdoor.frontdoor_service(settings, listen_host="127.0.0.1")
    assert spec is not None and spec.ready_url is not None
    host, port = frontdoor.comfyui_bind(settings)
    upstream = subprocess.Popen(
        [sys.executable, str(WS_STANDIN), "--host", host, "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    with log.open("ab") as sink:
        caddy = subprocess.Popen(spec.argv, env={**os.environ, **spec.env}, cwd=spec.cwd,
                                 stdout=sink, stderr=sink)  # fmt: skip
    try:
        wait_for(lambda: _answers(spec.ready_url), 20, "the front door")
        assert upstream.stdout is not None and int(upstream.stdout.readline()) == port
        yield FrontDoor(settings, settings.comfyui_port)
    finally:
        for process in (caddy, upstream):
            process.terminate()
            process.wait(10)


def _answers(url: str | None) -> bool:
    assert url is not None
    try:
        return http_status(url) < 500
    except OSError:
        return False


def _door_settings(tmp_path: Path, **overrides: object) -> Settings:
    return load_settings(
        **{
            "workspace": tmp_path / "workspace",
            "run_dir": tmp_path / "run",
            "comfyui_port": free_port(),
            "comfyui_internal_port": free_port(),
            "comfyui_auth": True,
            **overrides,
        }
    )


@pytest.fixture
def door(tmp_path: Path) -> Iterator[FrontDoor]:
    with running_frontdoor(_door_settings(tmp_path), tmp_path / "caddy.log") as running:
        yield running


def _upstream_saw(answer: Answer) -> str:
    assert answer.status == 200, answer
    seen: str = json.loads(answer.body)["path_qs"]
    return seen


def test_the_token_never_reaches_comfyui_whatever_else_the_request_carries(
    door: FrontDoor,
) -> None:
    token = credentials.comfyui_api_token(door.settings).value
    cookie = {"Cookie": door.session()}
    bearer = {"Authorization": f"Bearer {token}"}
    for headers in (cookie, bearer, {}):
        seen = _upstream_saw(door.ask(f"/_request?a=1&token={token}&b=2", headers))
        assert token not in seen and seen == "/_request?a=1&b=2"
    # Percent-encoded, or hidden elsewhere in the link: refused, not forwarded.
    encoded = f"%{ord(token[0]):02X}{token[1:]}"
    for path in (f"/_request?token={encoded}", f"/_request?x={token}", f"/{token}/_request"):
        for headers in (cookie, bearer):
            answer = door.ask(path, headers)
            assert answer.status == 400, path
            assert b"path_qs" not in answer.body
    # A browser opening a token link is sent to the same page without it, even with a session.
    navigation = {**cookie, "Accept": "text/html,application/xhtml+xml"}
    answer = door.ask(f"/_request?a=1&token={token}", navigation)
    assert answer.status == 302
    assert answer.headers["Location"] == "/_request?a=1"
    assert answer.headers["Set-Cookie"].startswith(frontdoor.COOKIE_NAME + "=")
    assert _upstream_saw(door.ask(answer.headers["Location"], cookie)) == "/_request?a=1"


def test_the_session_cookie_is_host_only_signed_expiring_and_revocable(
    door: FrontDoor, tmp_path: Path
) -> None:
    password = credentials.comfyui_password(door.settings).value
    set_cookie = door.ask("/_request", basic("admin", password)).headers["Set-Cookie"]
    attributes = [part.strip() for part in set_cookie.split(";")]
    assert attributes[0].startswith("__Host-ignition_comfyui=")
    assert {"Secure", "Path=/", "HttpOnly", "SameSite=Lax"} <= set(attributes)
    assert not any(a.lower().startswith(("domain", "max-age")) for a in attributes)
    assert any(a.startswith("Expires=") for a in attributes)
    cookie = attributes[0]
    # A neighbour's cookie for the parent domain cannot take the __Host- name; one under the
    # old name, sent first, changes nothing.
    planted = {"Cookie": f"ignition_comfyui=planted; {cookie}"}
    assert door.ask("/_request", planted).status == 200
    forged = {"Cookie": cookie.split("=", 1)[0] + "=9999999999." + "0" * 64}
    assert door.ask("/_request", forged).status == 401
    # Revoked: a new session key (what `ignition restart --logout` makes) and the old cookie is
    # refused by the restarted front door, while logging in again works.
    credentials.rotate_session_key(door.settings)
    with running_frontdoor(
        door.settings.model_copy(
            update={"comfyui_port": free_port(), "comfyui_internal_port": free_port()}
        ),
        tmp_path / "c2.log",
    ) as restarted:
        assert restarted.ask("/_request", {"Cookie": cookie}).status == 401
        assert restarted.ask("/_request", {"Cookie": restarted.session()}).status == 200


def test_caddy_refuses_a_session_past_its_end(tmp_path: Path) -> None:
    settings = _door_settings(tmp_path)
    credentials.session_key(settings)
    store = credentials.secrets_file(settings)
    stored = json.loads(store.read_text())
    with running_frontdoor(settings, tmp_path / "caddy.log") as door:
        cookie = door.session()
    # The same key, its end moved into the past (as if the front door had run for 30 days):
    # the cookie Caddy would have issued with it is refused by Caddy's own clock check.
    key = credentials.SessionKey(stored["comfyui_session_key"], int(time.time()) - 1)
    token = credentials.comfyui_api_token(settings).value
    password = credentials.comfyui_password(settings).value
    door_config = frontdoor.caddy_config(
        frontdoor._Door(
            listen=f"127.0.0.1:{free_port()}",
            upstream=f"127.0.0.1:{settings.comfyui_internal_port}",
            token=token,
            session=frontdoor.session_value(key, token, password),
            session_ends=key.ends,
            password_hash="$2a$04$" + "x" * 53,
            login_socket=tmp_path / "login.sock",
            public_origin=None,
        ),
        storage=tmp_path / "data",
    )
    expired_cookie = f"{frontdoor.COOKIE_NAME}={frontdoor.session_value(key, token, password)}"
    config = tmp_path / "expired.json"
    config.write_text(json.dumps(door_config))
    listen = door_config["apps"]["http"]["servers"]["comfyui"]["listen"][0]
    caddy = subprocess.Popen(["caddy", "run", "--config", str(config)], cwd=tmp_path,
                             env={**os.environ, "HOME": str(tmp_path)},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_for(lambda: _answers(f"http://{listen}/"), 20, "caddy")
        assert http_status(f"http://{listen}/", {"Cookie": expired_cookie}) == 401
    finally:
        caddy.terminate()
        caddy.wait(10)
    assert cookie != expired_cookie


def test_weak_secrets_are_replaced_and_the_replacement_is_announced(tmp_path: Path) -> None:
    settings = _door_settings(
        tmp_path,
        filebrowser_password="runpod",  # the seed's old default
        comfyui_api_token="a" * 24,
        filebrowser_port=free_port(),
    )
    warnings = credentials.refusal_warnings(settings)
    assert [w.split(" ", 1)[0] for w in warnings] == ["FILEBROWSER_PASSWORD", "COMFYUI_API_TOKEN"]
    assert all("refused" in w and str(credentials.secrets_file(settings)) in w for w in warnings)
    password = credentials.filebrowser_password(settings)
    assert password.refused and password.generated and password.value != "runpod"
    lines = filebrowser_announcement(settings, password)
    assert any(password.value in line for line in lines)  # shown once, as generated ones are
    token = credentials.comfyui_api_token(settings).value
    assert token != "a" * 24
    with running_frontdoor(settings, tmp_path / "caddy.log") as door:
        assert door.ask("/_request", basic("admin", "runpod")).status == 401
        assert door.ask("/_request", {"Authorization": "Bearer " + "a" * 24}).status == 401
        assert door.ask("/_request", {"Authorization": f"Bearer {token}"}).status == 200
        assert door.ask("/_request", basic("admin", password.value)).status == 200
        # The cheap check: another user name is refused before any password hash is computed.
        answer = door.ask("/_request", basic("root", password.value))
        assert answer.status == 401 and "Basic" in answer.headers["Www-Authenticate"]
    spec = filebrowser_service(settings, password=password, bind="127.0.0.1")
    assert spec is not None
    with running_copyparty(spec, tmp_path / "copyparty.log"):
        port = settings.filebrowser_port
        (settings.workspace / "visible.txt").write_text("x")
        _, body = browser_request(port, "GET", "/?ls", basic("admin", "runpod"))
        assert b"visible.txt" not in body
        status, body = browser_request(port, "GET", "/?ls", basic("admin", password.value))
        assert status == 200 and b"visible.txt" in body


def test_a_flood_of_guesses_costs_one_check_at_a_time_and_never_locks_the_owner_out(
    door: FrontDoor,
) -> None:
    # All from one address, as behind RunPod's proxy; the login server checks them one by one.
    statuses: list[int] = []
    guessers = [
        threading.Thread(
            target=lambda n=n: statuses.append(
                door.ask("/_request", basic("admin", f"guess-{n}")).status
            )
        )
        for n in range(24)
    ]
    for guesser in guessers:
        guesser.start()
    password = credentials.comfyui_password(door.settings).value
    owner = door.ask("/_request", basic("admin", password))
    for guesser in guessers:
        guesser.join()
    assert set(statuses) == {401}
    assert owner.status == 200 and frontdoor.COOKIE_NAME in owner.headers["Set-Cookie"]
    # The token never waits behind the guessers' queue.
    token = credentials.comfyui_api_token(door.settings).value
    assert door.ask("/_request", {"Authorization": f"Bearer {token}"}).status == 200


def test_the_pod_replaces_a_weak_password_and_logout_ends_every_session(
    pods: list[Pod], tmp_path: Path
) -> None:
    require_tool("caddy")
    pod = make_pod(
        tmp_path,
        FILEBROWSER_ENABLED="true",
        FILEBROWSER_PASSWORD="runpod",
        COMFYUI_AUTH="true",
        COMFYUI_INTERNAL_PORT=str(free_port()),
    )
    pods.append(pod)
    pod.start()

    def ready() -> bool:
        services = pod.status().get("services", {})
        return all(services.get(name, {}).get("ready") for name in ("comfyui", "frontdoor"))

    wait_for(ready, 30, "ComfyUI and the front door ready")
    assert "FILEBROWSER_PASSWORD is refused (it is a well-known password)" in pod.startup_log
    settings = load_settings(workspace=pod.workspace, comfyui_port=pod.port)
    password = credentials.filebrowser_password(settings).value  # the generated one, stored
    # Printed once, in the access block that ends the container log when every service is up.
    wait_for(lambda: "Ignition is up" in pod.output.read_text(), 30, "the access block")
    assert pod.output.read_text().count(password) == 1
    door = FrontDoor(settings, pod.port)
    assert door.ask("/system_stats", basic("admin", "runpod")).status == 401
    cookie = {"Cookie": door.session("/system_stats")}
    assert door.ask("/system_stats", cookie).status == 200
    restart = pod.cli("restart", "--logout")
    assert restart.returncode == 0, restart.stderr
    wait_for(ready, 30, "the front door back")
    assert door.ask("/system_stats", cookie).status == 401
    assert door.ask("/system_stats", {"Cookie": door.session("/system_stats")}).status == 200
