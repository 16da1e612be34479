"""What the control-channel commands share: find the supervisor, ask it, explain its absence."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

from ignition.settings import Settings

# Any non-zero code is "unhealthy" to Docker; 3 (not 1) lets a person tell "no supervisor at all"
# from "ComfyUI is down".
NOT_RUNNING = 3


class SupervisorNotRunningError(Exception):
    """Nobody answers on the control socket."""


def ask(settings: Settings, message: dict[str, Any], *, timeout_s: float) -> dict[str, Any] | None:
    """The supervisor's reply, or None (after saying why) when it is not running."""
    try:
        return request(settings.control_socket, message, timeout_s=timeout_s)
    except SupervisorNotRunningError:
        print(
            f"ignition is not running here (nothing answers on {settings.control_socket}); "
            "`ignition start` is the container's entrypoint",
            file=sys.stderr,
        )
    except PermissionError:
        print(f"permission denied on {settings.control_socket}: run as root", file=sys.stderr)
    except TimeoutError:
        print("the supervisor did not answer in time", file=sys.stderr)
    return None


def request(path: Path, message: dict[str, Any], *, timeout_s: float) -> dict[str, Any]:
    """Send one request and wait for its reply (used by the CLI, outside any event loop)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
            client.settimeout(timeout_s)
            client.connect(str(path))
            client.sendall(json.dumps(message).encode() + b"\n")
            with client.makefile("rb") as stream:
                line = stream.readline()
    except (FileNotFoundError, ConnectionRefusedError) as error:
        raise SupervisorNotRunningError(str(path)) from error
    if not line:
        raise SupervisorNotRunningError(f"{path}: connection closed without an answer")
    reply: dict[str, Any] = json.loads(line)
    return reply
