"""Every command, fed the bad inputs a user really gives it: one clear line that names the value,
the documented exit code, and never a traceback. Real `ignition` processes, temp dirs only."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from support import wait_for

# The contract (cli/__init__.py): 2 unusable flags, settings or paths; 3 no supervisor running;
# 130 interrupted; 141 stdout closed by its reader.
USAGE, NO_SUPERVISOR, INTERRUPTED, BROKEN_PIPE = 2, 3, 130, 141


@dataclass(frozen=True)
class Case:
    argv: tuple[str, ...]
    code: int
    says: str  # in stderr; "{tmp}" stands for the test's temp dir
    env: dict[str, str] = field(default_factory=dict)


CASES = {
    "download into a file": Case(
        ("download", "--models-dir", "{tmp}/FILE", "--hf", "clip_l"), USAGE, "{tmp}/FILE"
    ),
    "download under a file": Case(
        ("download", "--models-dir", "{tmp}/FILE/models", "--hf", "clip_l"),
        USAGE,
        "{tmp}/FILE is a file",
    ),
    "download, store is a file": Case(
        ("download", "--hf", "clip_l"),
        USAGE,
        "PERSISTENT_STORAGE '{tmp}/FILE'",
        {"PERSISTENT_STORAGE": "{tmp}/FILE"},
    ),
    "download, bad number": Case(
        ("download", "--hf", "clip_l"),
        USAGE,
        "IGNITION_CONNECTIONS",
        {"IGNITION_CONNECTIONS": "lots"},
    ),
    "download, unknown flag": Case(("download", "--hf-models", "x"), USAGE, "--hf-models"),
    "verify a file": Case(
        ("verify",),
        USAGE,
        "IGNITION_MODELS_DIR '{tmp}/FILE'",
        {"IGNITION_MODELS_DIR": "{tmp}/FILE"},
    ),
    "verify, flag": Case(("verify", "--models-dir", "{tmp}/FILE"), USAGE, "--models-dir"),
    "catalog, unknown flag": Case(("catalog", "--md"), USAGE, "--md"),
    "template into a file": Case(
        ("template", "--no-input", "--output-dir", "{tmp}/FILE"), USAGE, "{tmp}/FILE"
    ),
    "template, tiny volume": Case(
        ("template", "--no-input", "--volume-gb", "1", "--output-dir", "{tmp}/t"),
        USAGE,
        "--volume-gb",
    ),
    "template, bad model": Case(
        ("template", "--no-input", "--hf", "no-such-short-name", "--output-dir", "{tmp}/t"),
        USAGE,
        "no-such-short-name",
    ),
    "template deploy without a key": Case(
        ("template", "--no-input", "--deploy", "--output-dir", "{tmp}/t"), USAGE, "RUNPOD_API_KEY"
    ),
    "status, no pod": Case(("status",), NO_SUPERVISOR, "{tmp}/run/control.sock"),
    "restart, no pod": Case(("restart",), NO_SUPERVISOR, "{tmp}/run/control.sock"),
    "stop, no pod": Case(("stop",), NO_SUPERVISOR, "{tmp}/run/control.sock"),
    "restart, bad toggle": Case(("restart", "--manager-ui", "maybe"), USAGE, "maybe"),
    "connections, log is a folder": Case(
        ("connections",), USAGE, "{tmp}", {"IGNITION_CONNECTIONS_LOG": "{tmp}"}
    ),
    "nuke, unsafe tmp": Case(
        ("nuke", "--yes"), USAGE, "IGNITION_TMP_DIR", {"IGNITION_TMP_DIR": "/"}
    ),
    "start, no such command": Case(("start", "no-such-program"), 127, "no-such-program"),
}


def ignition(
    tmp_path: Path, argv: tuple[str, ...], env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ignition", *argv],
        env={**base_env(tmp_path), **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def base_env(tmp_path: Path) -> dict[str, str]:
    """Every path the commands use inside the temp dir; no network anyone could reach."""
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path / "home"),
        "WORKSPACE": str(tmp_path / "ws"),
        "IGNITION_RUN_DIR": str(tmp_path / "run"),
        "IGNITION_STARTUP_LOG": str(tmp_path / "startup.log"),
        "IGNITION_TMP_DIR": str(tmp_path / "tmp"),
        "IGNITION_CONNECTIONS_LOG": str(tmp_path / "connections.log"),
        "HF_ENDPOINT": "http://127.0.0.1:9",
        "CIVITAI_ENDPOINT": "http://127.0.0.1:9",
        "RUNPOD_API_URL": "http://127.0.0.1:9",
    }


@pytest.mark.parametrize("name", CASES)
def test_bad_input_gets_one_line_and_its_exit_code(tmp_path: Path, name: str) -> None:
    (tmp_path / "FILE").write_text("not a folder")
    case = CASES[name]
    fill = {"{tmp}": str(tmp_path)}

    def filled(text: str) -> str:
        for key, value in fill.items():
            text = text.replace(key, value)
        return text

    result = ignition(
        tmp_path, tuple(map(filled, case.argv)), {k: filled(v) for k, v in case.env.items()}
    )
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == case.code, output
    assert filled(case.says) in result.stderr, result.stderr


def test_a_closed_pipe_ends_catalog_quietly(tmp_path: Path) -> None:
    """`ignition catalog | head -3`: the reader leaves before the writer is done."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ignition", "catalog"],
        env=base_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # before the first byte: every write meets a closed pipe
    errors = process.stderr.read().decode()
    assert process.wait(timeout=60) == BROKEN_PIPE
    assert errors == ""


@pytest.fixture
def silent_hub() -> Iterator[tuple[str, threading.Event]]:
    """A server that accepts connections and never answers: a download that hangs."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = threading.Event()
    held: list[socket.socket] = []

    def accept() -> None:
        try:
            while True:
                connection, _ = listener.accept()
                held.append(connection)
                accepted.set()
        except OSError:
            return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    listener.close()
    for connection in held:
        connection.close()


def test_ctrl_c_says_partials_are_kept_and_exits_130(
    tmp_path: Path, silent_hub: tuple[str, threading.Event]
) -> None:
    url, accepted = silent_hub
    process = subprocess.Popen(
        [sys.executable, "-m", "ignition", "download", "--hf", "owner/repo/x.safetensors"],
        env={**base_env(tmp_path), "HF_ENDPOINT": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(accepted.is_set, 30, "the download's first request")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == INTERRUPTED, err
    assert "Traceback" not in out + err, err
    assert "partial downloads are kept and resume" in err
