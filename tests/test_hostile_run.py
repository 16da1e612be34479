"""Attacks on the running pod (issue 20, run side), each reproduced against the real parts:
the nuke, the supervisor, Caddy, copyparty, log files in a shared /tmp."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ignition import credentials
from ignition.privacy import monitor
from ignition.run.filebrowser import filebrowser_service
from ignition.run.startup_log import configure_startup_logging
from ignition.settings import Settings, load_settings
from pod_harness import Pod, make_pod
from support import free_port
from test_filebrowser import _basic as basic
from test_filebrowser import _request as browser_request
from test_filebrowser import _running as running_copyparty
from unprivileged import reachable_dir, run_unprivileged

BROWSER_PASSWORD = "Kq7-vorpal-Zephyr-91-lantern"
BROWSER_AUTH = basic("admin", BROWSER_PASSWORD)
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


@pytest.fixture
def pods() -> Iterator[list[Pod]]:
    started: list[Pod] = []
    yield started
    for pod in started:
        pod.kill()


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
