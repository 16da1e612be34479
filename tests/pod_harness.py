"""Runs the real `ignition start` as a child process with every path and port in a temp dir."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ignition.cli._control_client import SupervisorNotRunningError, request
from support import free_port, require_tool, wait_for

__all__ = ["STANDIN_DIR", "Pod", "free_port", "make_pod", "require_tool", "wait_for"]

REPO = Path(__file__).resolve().parent.parent
STANDIN_DIR = REPO / "tests" / "standins" / "comfyui"
# Variables of the developer's shell that would change what the pod does.
_SCRUBBED = (
    "CIVITAI_MODELS",
    "HUGGINGFACE_MODELS",
    "COMFYUI_WORKFLOWS",
    "COMFYUI_NODES",
    "GITHUB_TOKEN",
    "CIVITAI_TOKEN",
    "HF_TOKEN",
    "RUNPOD_POD_ID",
    "RUNPOD_API_KEY",
    "PERSISTENT_STORAGE",
    "COMFY_FLAGS",
    "ENABLE_MANAGER_UI",
)


@dataclass
class Pod:
    root: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    output: Path = field(init=False)

    def __post_init__(self) -> None:
        self.output = self.root / "supervisor.out"

    @property
    def workspace(self) -> Path:
        return Path(self.env["WORKSPACE"])

    @property
    def port(self) -> int:
        return int(self.env["COMFYUI_PORT"])

    @property
    def startup_log(self) -> str:
        path = Path(self.env["IGNITION_STARTUP_LOG"])
        return path.read_text(encoding="utf-8") if path.exists() else ""

    def start(self) -> None:
        with self.output.open("wb") as out:
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ignition", "start"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def cli(
        self, *args: str, timeout_s: float = 60, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "ignition", *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def status(self) -> dict[str, Any]:
        """The supervisor's status, asked on its socket directly (no CLI start-up per poll)."""
        socket_path = Path(self.env["IGNITION_RUN_DIR"]) / "control.sock"
        try:
            reply = request(socket_path, {"command": "status"}, timeout_s=10)
        except SupervisorNotRunningError:
            return {}
        status: dict[str, Any] = reply["status"]
        return status

    def comfyui(self) -> dict[str, Any]:
        services: dict[str, Any] = self.status().get("services", {})
        return services.get("comfyui") or {}

    def wait_http(self, timeout_s: float = 300) -> None:
        """Until ComfyUI answers /system_stats: what a person in the browser waits for."""

        def answers() -> bool:
            try:
                self.get("/system_stats")
            except OSError:
                return False
            return True

        wait_for(answers, timeout_s, "ComfyUI to answer")

    def wait_ready(self, *, not_pid: int | None = None, timeout_s: float = 20) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            comfy = self.comfyui()
            if comfy.get("state") == "failed":
                raise AssertionError(f"ComfyUI was given up on:\n{comfy['error']}")
            ok = comfy.get("ready") and comfy.get("pid") not in (None, not_pid)
            return comfy if ok else None

        found: dict[str, Any] = wait_for(ready, timeout_s, "ComfyUI ready")
        return found

    def get(self, path: str) -> Any:
        return self.get_from(self.port, path)

    def get_from(self, port: int, path: str) -> Any:
        url = f"http://127.0.0.1:{port}{path}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())

    def post(self, path: str) -> Any:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.loads(response.read())

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def wait_exit(self, timeout_s: float = 20) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout_s)

    def descendants(self) -> list[psutil.Process]:
        assert self.process is not None
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """Teardown: whatever a failed test left running goes."""
        if self.process is None or self.process.poll() is not None:
            return
        leftovers = self.descendants()
        self.process.kill()
        self.process.wait()
        for child in leftovers:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(child.pid, signal.SIGKILL)


def make_pod(root: Path, comfyui_dir: Path = STANDIN_DIR, **env: str) -> Pod:
    for name in ("workspace", "run", "bin", "tmp", "home"):
        (root / name).mkdir(parents=True, exist_ok=True)
    base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    base.update(
        {
            "PYTHONPATH": str(REPO / "src"),
            "WORKSPACE": str(root / "workspace"),
            "COMFYUI_DIR": str(comfyui_dir),
            "COMFYUI_PYTHON": sys.executable,
            "COMFYUI_PORT": str(free_port()),
            "FILEBROWSER_PORT": str(free_port()),
            "FILEBROWSER_ENABLED": "false",
            "COMFYUI_AUTH": "false",
            "PRIVACY_MODE": "off",
            "IGNITION_RUN_DIR": str(root / "run"),
            "IGNITION_STARTUP_LOG": str(root / "startup.log"),
            "IGNITION_BIN_DIR": str(root / "bin"),
            "IGNITION_TMP_DIR": str(root / "tmp"),
            "IGNITION_HOSTS_FILE": str(root / "hosts"),
            "IGNITION_CONNECTIONS_LOG": str(root / "connections.log"),
            "HOME": str(root / "home"),
            "STANDIN_READY_DELAY_S": "0.2",
        }
    )
    base.update(env)
    return Pod(root=root, env=base)
