"""The control channel: a root-only Unix socket, one JSON line in, one JSON line out.

    → {"command": "status"}                      ← {"ok": true, "status": {...}}
    → {"command": "restart", "manager_ui": true}  ← {"ok": true, "pid": 4242}
    → {"command": "stop"}                        ← {"ok": true, "nuke": "..."}  (once stopped)

Local only by construction: the socket lives in IGNITION_RUN_DIR (0700) and is itself 0600, so
only root on the pod can restart or stop it; nothing listens on the network for this.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

# The client side is ignition/cli/_control_client.py (no asyncio: `status` starts fast).
Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
_MAX_REQUEST_BYTES = 64 * 1024


class ControlServer:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.server: asyncio.Server | None = None
        # Connections being answered; a `stop` caller gets its reply before the process exits.
        self.in_flight: set[asyncio.Task[Any]] = set()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        others = self.in_flight - {asyncio.current_task()}
        if others:
            await asyncio.wait(others, timeout=2.0)
        self.path.unlink(missing_ok=True)


async def serve(path: Path, handle: Handler) -> ControlServer:
    """Listen on `path`; refuses if a live supervisor already answers there."""
    control = ControlServer(path)
    _claim(path)

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        control.in_flight.add(task)
        try:
            line = await reader.readline()
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("not an object")
                reply = await handle(request)
            except ValueError as error:
                reply = {"ok": False, "error": f"bad request: {error}"}
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            control.in_flight.discard(task)

    # The socket file is created by bind(); a umask makes it 0600 from its first instant.
    previous = os.umask(0o177)
    try:
        control.server = await asyncio.start_unix_server(on_connect, path, limit=_MAX_REQUEST_BYTES)
    finally:
        os.umask(previous)
    return control


def _claim(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)
    if path.exists():
        if _answers(path):
            raise RuntimeError(f"another `ignition start` is already running ({path} answers)")
        path.unlink()  # left behind by a supervisor that was killed


def _answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True
