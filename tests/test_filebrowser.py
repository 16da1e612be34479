"""The file browser against the real copyparty, run from its ServiceSpec as a child process.

Every request goes to copyparty on 127.0.0.1 and a free port; the workspace, run dir and an
"outside" directory (the target of escape attempts) live in a temp dir.
"""

from __future__ import annotations

import base64
import http.client
import importlib.util
import itertools
import os
import signal
import socket
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from ignition import credentials
from ignition.errors import ConfigError
from ignition.run.filebrowser import (
    CONFIG_NAME,
    filebrowser_announcement,
    filebrowser_service,
    public_url,
    state_dir,
)
from ignition.run.service import ServiceSpec
from ignition.settings import Settings, load_settings
from support import answers, free_port, wait_for

PASSWORD = "correct-horse-battery-staple"
OUTSIDE_MARKER = b"OUTSIDE-THE-WORKSPACE"
# copyparty bans a client address after repeated refusals. Each test that expects refusals sends
# them from its own loopback address (127.0.1.N, the `stranger` fixture): a ban then never turns a
# later test's "refused by the check under test" into "refused because banned", and never catches
# the owner's requests from 127.0.0.1.
OWNER = "127.0.0.1"
_STRANGERS = itertools.count(1)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def _make_tree(root: Path) -> tuple[Path, Path]:
    """A workspace with a model, two symlinks out of it and one within, and an outside dir."""
    workspace, outside = root / "workspace", root / "outside"
    (workspace / "ComfyUI" / "models" / "loras").mkdir(parents=True)
    (workspace / "ComfyUI" / "models" / "checkpoints").mkdir()
    (workspace / "ComfyUI" / "models" / "checkpoints" / "base.safetensors").write_bytes(b"x" * 64)
    outside.mkdir()
    (outside / "secret.txt").write_bytes(OUTSIDE_MARKER)
    (workspace / "escape").symlink_to(outside)
    (workspace / "ComfyUI" / "models" / "loras" / "escape.safetensors").symlink_to(
        outside / "secret.txt"
    )
    # A link that stays inside (how a persistent model store may be wired in) must keep working.
    (workspace / "ComfyUI" / "models" / "linked").symlink_to(
        workspace / "ComfyUI" / "models" / "checkpoints"
    )
    return workspace, outside


def _settings(root: Path, workspace: Path, **overrides: object) -> Settings:
    defaults: dict[str, object] = {
        "workspace": workspace,
        "run_dir": root / "run",
        "filebrowser_port": free_port(),
        "filebrowser_username": "admin",
    }
    return load_settings(**{**defaults, **overrides})


@pytest.fixture(autouse=True)
def _no_pod_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FILEBROWSER_PASSWORD", "FILEBROWSER_ENABLED", "RUNPOD_POD_ID"):
        monkeypatch.delenv(name, raising=False)


def _spec(settings: Settings, password: credentials.Secret | None = None) -> ServiceSpec:
    spec = filebrowser_service(settings, password=password, bind="127.0.0.1")
    assert spec is not None
    return spec


@contextmanager
def _running(spec: ServiceSpec, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """The spec's process, started the way the supervisor starts it, stopped afterwards."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            list(spec.argv),
            env={**os.environ, **spec.env},
            cwd=spec.cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(spec, process, log)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(spec: ServiceSpec, process: subprocess.Popen[bytes], log: Path) -> None:
    ready_url = spec.ready_url
    assert ready_url is not None

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"copyparty exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        return answers(ready_url)

    try:
        wait_for(ready, 30, "copyparty to answer", interval_s=0.05)
    except AssertionError:
        pytest.fail(f"copyparty not ready after 30 s:\n{log.read_text()[-3000:]}")


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    source: str = OWNER,
) -> tuple[int, bytes]:
    """One request with `path` sent exactly as written (no client-side normalisation)."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=10, source_address=(source, 0)
    )
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


@dataclass(frozen=True)
class Served:
    settings: Settings
    workspace: Path
    outside: Path
    process: subprocess.Popen[bytes]

    @property
    def port(self) -> int:
        return self.settings.filebrowser_port

    def get(
        self, path: str, headers: dict[str, str] | None = None, source: str = OWNER
    ) -> tuple[int, bytes]:
        return _request(self.port, "GET", path, headers, source=source)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("filebrowser")
    workspace, outside = _make_tree(root)
    settings = _settings(root, workspace, filebrowser_password=PASSWORD)
    with _running(_spec(settings), root / "copyparty.log") as process:
        yield Served(settings, workspace, outside, process)


AUTH = _basic("admin", PASSWORD)


@pytest.fixture
def stranger() -> str:
    return f"127.0.1.{next(_STRANGERS)}"


# --- authentication ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _basic("admin", "wrong"),
        _basic("someone", PASSWORD),
        {"PW": PASSWORD},  # the password alone is not enough: usernames are required
        {"PW": "admin:wrong"},
    ],
    ids=["anonymous", "wrong-password", "wrong-user", "password-only", "pw-header-wrong"],
)
def test_without_valid_credentials_nothing_is_served(
    served: Served, headers: dict[str, str], stranger: str
) -> None:
    status, body = served.get("/ComfyUI/models/checkpoints/", headers, stranger)
    assert status in (401, 403)
    assert b"base.safetensors" not in body
    status, body = served.get("/ComfyUI/models/checkpoints/base.safetensors", headers, stranger)
    assert status in (401, 403) and body != b"x" * 64
    # The root answers (it is the login page) but lists nothing.
    status, body = served.get("/?ls", headers, stranger)
    assert b"ComfyUI" not in body


@pytest.mark.parametrize(
    ("method", "path", "headers"),
    [
        ("PUT", "/ComfyUI/models/loras/anon.bin", {}),
        ("MKCOL", "/ComfyUI/anon/", {}),
        ("DELETE", "/ComfyUI/models/checkpoints/base.safetensors", {}),
        ("MOVE", "/ComfyUI/models/", {"Destination": "/moved/"}),
        ("PROPFIND", "/ComfyUI/", {"Depth": "1"}),  # WebDAV listing
    ],
)
def test_anonymous_writes_and_webdav_are_refused(
    served: Served, method: str, path: str, headers: dict[str, str], stranger: str
) -> None:
    payload = b"x" if method == "PUT" else None
    status, body = _request(served.port, method, path, headers, payload, stranger)
    assert status in (401, 403)
    assert b"<D:response>" not in body  # no WebDAV listing
    models = served.workspace / "ComfyUI" / "models"
    assert (models / "checkpoints" / "base.safetensors").exists()
    assert not (models / "loras" / "anon.bin").exists()
    assert not (served.workspace / "ComfyUI" / "anon").exists()


@pytest.mark.parametrize(
    "headers", [AUTH, {"PW": f"admin:{PASSWORD}"}], ids=["basic-auth", "pw-header"]
)
def test_valid_credentials_list_and_download(served: Served, headers: dict[str, str]) -> None:
    status, body = served.get("/ComfyUI/models/checkpoints/?ls", headers)
    assert status == 200 and b"base.safetensors" in body
    status, body = served.get("/ComfyUI/models/checkpoints/base.safetensors", headers)
    assert status == 200 and body == b"x" * 64


def test_symlinks_within_the_workspace_are_followed(served: Served) -> None:
    status, body = served.get("/ComfyUI/models/linked/base.safetensors", AUTH)
    assert status == 200 and body == b"x" * 64


def test_upload_lands_in_the_models_folder(served: Served) -> None:
    payload = os.urandom(100_000)
    status, _ = _request(
        served.port, "PUT", "/ComfyUI/models/loras/style.safetensors", AUTH, payload
    )
    assert status == 201
    landed = served.workspace / "ComfyUI" / "models" / "loras" / "style.safetensors"
    assert landed.read_bytes() == payload


# --- confinement ------------------------------------------------------------------------------


def _escape_paths(outside: Path) -> list[str]:
    absolute = (outside / "secret.txt").as_posix()
    return [
        "/../outside/secret.txt",
        "/%2e%2e/outside/secret.txt",
        "/ComfyUI/%2e%2e/%2e%2e/outside/secret.txt",
        "/ComfyUI/models/..%2f..%2f..%2foutside/secret.txt",
        "/%2e%2e%2foutside%2fsecret.txt",
        "/ComfyUI/..%5c..%5coutside%5csecret.txt",
        "/" + absolute,
        "/" + absolute.replace("/", "%2f"),
        "/escape/secret.txt",  # directory symlink pointing outside
        "/escape/?ls",  # its listing
        "/ComfyUI/models/loras/escape.safetensors",  # file symlink pointing outside
    ]


def test_nothing_outside_the_workspace_is_reachable(served: Served, stranger: str) -> None:
    for path in _escape_paths(served.outside):
        status, body = served.get(path, AUTH, stranger)
        assert status >= 400, path
        assert OUTSIDE_MARKER not in body, path


def test_uploads_cannot_escape_through_a_symlink(served: Served, stranger: str) -> None:
    status, _ = _request(served.port, "PUT", "/escape/planted.txt", AUTH, b"planted", stranger)
    assert status >= 400
    assert not (served.outside / "planted.txt").exists()


def test_the_credentials_store_is_not_served(served: Served, stranger: str) -> None:
    store = credentials.secrets_file(served.settings)
    store.parent.mkdir(exist_ok=True)
    store.write_text('{"filebrowser_password": "stored-secret"}')
    relative = "/" + store.relative_to(served.workspace).as_posix()
    status, body = served.get(relative, AUTH, stranger)
    assert status >= 400 and b"stored-secret" not in body
    status, _ = _request(served.port, "DELETE", relative, AUTH, source=stranger)
    assert status >= 400 and store.exists()


def _session_cookie(served: Served) -> str:
    """Log in the way the web page does (a multipart form) and return the session cookie."""
    boundary = "ignition-test-boundary"
    fields = {"act": "login", "uname": "admin", "cppwd": PASSWORD}
    body = (
        "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        )
        + f"--{boundary}--\r\n"
    )
    connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
    try:
        connection.request(
            "POST",
            "/",
            body=body.encode(),
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        response = connection.getresponse()
        response.read()
        cookie = response.getheader("Set-Cookie") or ""
    finally:
        connection.close()
    assert cookie.startswith(("cppwd=", "cppws=")), cookie
    return cookie.split(";")[0]


def test_another_pods_page_cannot_use_the_session_to_write(served: Served, stranger: str) -> None:
    # runpod.net is not on the Public Suffix List: every pod is "same-site" with every other, so
    # SameSite cookies do not stop a page on another pod; copyparty's Origin check does.
    cookie = {"Cookie": _session_cookie(served)}
    target = served.workspace / "ComfyUI" / "models" / "checkpoints" / "base.safetensors"
    path = "/ComfyUI/models/checkpoints/base.safetensors?delete"
    foreign = {**cookie, "Origin": "https://otherpod-8080.proxy.runpod.net"}
    status, _ = _request(served.port, "POST", path, foreign, source=stranger)
    assert status == 403 and target.exists()
    status, _ = _request(served.port, "PUT", "/ComfyUI/planted.bin", foreign, b"x", stranger)
    assert status == 403 and not (served.workspace / "ComfyUI" / "planted.bin").exists()
    # The same cookie without a foreign Origin is a valid session.
    status, body = served.get("/ComfyUI/models/checkpoints/?ls", cookie)
    assert status == 200 and b"base.safetensors" in body


def test_guessing_gets_the_guesser_banned(served: Served, stranger: str) -> None:
    for attempt in range(21):  # "more than 20 in 10 minutes"
        status, _ = served.get("/ComfyUI/", _basic("admin", f"guess-{attempt}"), stranger)
        assert status in (401, 403)
    status, body = served.get("/ComfyUI/?ls", AUTH, stranger)
    assert status >= 400 and b"models" not in body  # even the right password, from there
    status, _ = served.get("/ComfyUI/?ls", AUTH)
    assert status == 200


# --- the process ------------------------------------------------------------------------------


def test_secret_is_neither_on_argv_nor_in_the_environment(served: Served) -> None:
    process = psutil.Process(served.process.pid)
    assert PASSWORD not in " ".join(process.cmdline())
    assert all(PASSWORD not in value for value in process.environ().values())
    config = state_dir(served.settings) / CONFIG_NAME
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o700


def test_only_the_http_port_is_open_and_nothing_else_runs(served: Served) -> None:
    process = psutil.Process(served.process.pid)
    sockets = process.net_connections(kind="all")
    listening = [c for c in sockets if c.status == psutil.CONN_LISTEN]
    assert [(c.laddr.ip, c.laddr.port) for c in listening] == [("127.0.0.1", served.port)]
    # FTP, SFTP and SMB would add listeners, TFTP a UDP socket. (mDNS and SSDP never announce on
    # loopback, so for those only the config, which does not enable them, is the guard.)
    assert not [c for c in sockets if c.type == socket.SOCK_DGRAM]
    assert process.children(recursive=True) == []  # no ffmpeg, no thumbnailer, no workers


# --- generated password, restarts, where it writes ---------------------------------------------


def _logs_in(settings: Settings, password: str) -> bool:
    status, _ = _request(
        settings.filebrowser_port, "GET", "/ComfyUI/?ls", _basic("admin", password)
    )
    return status == 200


def _all_files(root: Path) -> set[Path]:
    return set(root.rglob("*"))


def test_generated_password_is_announced_once_works_and_survives_restarts(
    tmp_path: Path,
) -> None:
    workspace, _ = _make_tree(tmp_path)
    settings = _settings(tmp_path, workspace)
    before = _all_files(tmp_path)
    log = tmp_path / "copyparty.log"

    first = credentials.filebrowser_password(settings)
    assert first.generated
    spec = _spec(settings, first)
    announced = filebrowser_announcement(settings, first)
    with _running(spec, log) as process:
        assert _logs_in(settings, first.value)
        process.send_signal(signal.SIGKILL)  # a crash: the supervisor starts the same spec again
        process.wait()

    again = credentials.filebrowser_password(settings)
    announced += filebrowser_announcement(settings, again)
    with _running(spec, log):  # the same spec, unchanged
        assert _logs_in(settings, again.value)
    with _running(_spec(settings, again), log):  # and rebuilt, as a fresh `ignition start` does
        assert _logs_in(settings, again.value)

    assert again.value == first.value and not again.generated
    assert "\n".join(announced).count(first.value) == 1
    assert first.value not in log.read_text()

    # copyparty wrote only into the run dir: nothing in the workspace, nothing in (its) HOME.
    created = _all_files(tmp_path) - before - {log}
    run_dir = settings.run_dir
    assert {p for p in created if not p.is_relative_to(run_dir)} == {
        credentials.secrets_file(settings).parent,
        credentials.secrets_file(settings),
    }
    assert list((state_dir(settings) / "home").iterdir()) == []


# --- building the spec ------------------------------------------------------------------------


def test_disabled_means_no_service(tmp_path: Path) -> None:
    settings = _settings(tmp_path, tmp_path / "ws", filebrowser_enabled=False)
    assert filebrowser_service(settings) is None
    assert filebrowser_announcement(settings, credentials.Secret("x", generated=True)) == [
        "File browser: off (FILEBROWSER_ENABLED=false)"
    ]
    assert not settings.run_dir.exists()


def test_spec_runs_copyparty_with_only_a_config_path(tmp_path: Path) -> None:
    settings = _settings(tmp_path, tmp_path / "ws", filebrowser_password=PASSWORD)
    spec = filebrowser_service(settings)
    assert spec is not None
    config = state_dir(settings) / CONFIG_NAME
    assert spec.argv[1:] == ("-m", "copyparty", "-c", str(config))
    assert PASSWORD not in " ".join(spec.argv) + " ".join(spec.env.values())
    text = config.read_text()
    assert "i: 0.0.0.0" in text and f"p: {settings.filebrowser_port}" in text
    assert f"admin: {PASSWORD}" in text
    assert spec.ready_url == f"http://127.0.0.1:{settings.filebrowser_port}/"


def test_public_url_is_the_runpod_proxy_on_a_pod(tmp_path: Path) -> None:
    settings = load_settings(workspace=tmp_path, runpod_pod_id="abc123", filebrowser_port=8080)
    assert public_url(settings) == "https://abc123-8080.proxy.runpod.net/"
    lines = filebrowser_announcement(settings, credentials.Secret("s3cret", generated=False))
    assert lines[0].startswith("File browser: https://abc123-8080.proxy.runpod.net/")
    assert all("s3cret" not in line for line in lines)


@pytest.mark.parametrize(
    "overrides",
    [
        {"filebrowser_username": "ad:min"},
        {"filebrowser_username": "ad min"},
        {"filebrowser_password": "pass\nword"},
        {"filebrowser_password": "pass  # word"},
    ],
    ids=["colon-in-user", "space-in-user", "newline-in-password", "comment-in-password"],
)
def test_unusable_account_is_a_config_error(tmp_path: Path, overrides: dict[str, str]) -> None:
    overrides = {"filebrowser_password": PASSWORD, **overrides}
    settings = _settings(tmp_path, tmp_path / "ws", **overrides)
    with pytest.raises(ConfigError) as caught:
        filebrowser_service(settings)
    assert PASSWORD not in str(caught.value)
    assert not (state_dir(settings) / CONFIG_NAME).exists()


def test_run_dir_inside_the_workspace_is_refused(tmp_path: Path) -> None:
    settings = load_settings(
        workspace=tmp_path, run_dir=tmp_path / "run", filebrowser_password=PASSWORD
    )
    with pytest.raises(ConfigError, match="IGNITION_RUN_DIR"):
        filebrowser_service(settings)


# --- a real browser ---------------------------------------------------------------------------


def _browser_available() -> bool:
    missing = [tool for tool in (CHROMIUM, CHROMEDRIVER) if not Path(tool).exists()]
    if importlib.util.find_spec("selenium") is None:
        missing.append("selenium")
    if missing and os.environ.get("IGNITION_TEST_REQUIRE_TOOLS") == "1":
        pytest.fail(
            f"missing {missing}: apt-get install chromium chromium-driver; pip install .[dev]"
        )
    return not missing


def test_a_person_logs_in_with_a_browser_and_sees_the_models(
    served: Served, tmp_path: Path
) -> None:
    if not _browser_available():
        pytest.skip("chromium / chromedriver not installed")
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    # Chromium writes crash-report settings and a dconf cache under HOME whatever --user-data-dir
    # says: give it a HOME of its own.
    home = tmp_path / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    env["XDG_CACHE_HOME"] = str(home / ".cache")
    # An explicit driver path keeps Selenium Manager (which would download drivers) out of it.
    service = webdriver.ChromeService(CHROMEDRIVER, env=env)
    driver = webdriver.Chrome(options=options, service=service)
    try:
        base = f"http://127.0.0.1:{served.port}/"
        driver.get(base + "?h")
        driver.find_element(By.ID, "lu").send_keys("admin")
        driver.find_element(By.ID, "lp").send_keys(PASSWORD)
        driver.find_element(By.ID, "ls").click()
        wait = WebDriverWait(driver, 20)
        # The session cookie: cppws over HTTPS, cppwd over plain HTTP.
        wait.until(lambda d: d.get_cookie("cppwd") or d.get_cookie("cppws"))

        driver.get(base + "ComfyUI/models/")
        wait.until(lambda d: d.find_elements(By.LINK_TEXT, "checkpoints/"))[0].click()
        wait.until(lambda d: d.find_elements(By.LINK_TEXT, "base.safetensors"))
    finally:
        driver.quit()
