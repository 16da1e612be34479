"""`ignition start`'s access block stays the last thing in the container log, even when the
downloads end after every service is up."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pod_harness import Pod, make_pod
from support import wait_for

RULE = "=" * 72


def blocks(output: str) -> list[list[str]]:
    """Every access block printed so far (timestamps dropped), in order."""
    lines = [line.split(" ", 2)[-1] for line in output.splitlines()]
    rules = [i for i, line in enumerate(lines) if line == RULE]
    found = [lines[a + 1 : b] for a, b in zip(rules[::2], rules[1::2], strict=False)]
    return [block for block in found if block and block[0].startswith("Ignition is up")]


class HeldHub:
    """A Hugging Face endpoint that holds every request until released, then answers 404."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.release = threading.Event()
        self.asked = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            self.asked.set()
            self.release.wait(60)
            connection.recv(65536)
            body = b'{"error": "Repository not found"}'
            connection.sendall(
                b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body)
            )

    def close(self) -> None:
        self.release.set()
        self.listener.close()


@pytest.fixture
def hub() -> Iterator[HeldHub]:
    held = HeldHub()
    yield held
    held.close()


def test_the_block_is_repeated_when_downloads_outlast_the_services(
    pods: list[Pod], tmp_path: Path, hub: HeldHub
) -> None:
    pod = make_pod(
        tmp_path,
        HF_ENDPOINT=hub.url,
        HUGGINGFACE_MODELS="org/held/model.safetensors",
        FILEBROWSER_PASSWORD="fb-secret-7777",
    )
    pods.append(pod)
    pod.start()
    wait_for(hub.asked.is_set, 20, "the download's first request")

    first = wait_for(lambda: blocks(pod.output.read_text()), 20, "the first access block")
    assert first[-1][0] == "Ignition is up. How to reach this pod:"
    assert any(line.startswith("ComfyUI: http://localhost:") for line in first[-1])
    assert "Models: still downloading (`ignition status` shows progress)" in first[-1]

    hub.release.set()  # the download fails now, long after every service is up
    every = wait_for(
        lambda: (found := blocks(pod.output.read_text())) and len(found) == 2 and found, 30, "again"
    )
    assert "Models: some failed (see the lines above, or `ignition status`)" in every[-1]
    assert pod.output_tail(1).endswith(RULE), "the block is the last thing in the log"
    assert "fb-secret-7777" not in pod.output.read_text()  # a password you set is never shown


def test_with_wait_for_models_the_file_browser_login_comes_before_comfyui(
    pods: list[Pod], tmp_path: Path, hub: HeldHub
) -> None:
    """ComfyUI waits for the downloads; the file browser, to watch them, must not."""
    pod = make_pod(
        tmp_path,
        WAIT_FOR_MODELS="true",
        FILEBROWSER_ENABLED="true",
        HF_ENDPOINT=hub.url,
        HUGGINGFACE_MODELS="org/held/model.safetensors",
    )
    pods.append(pod)
    pod.start()
    wait_for(hub.asked.is_set, 20, "the download's first request")

    (first,) = wait_for(lambda: blocks(pod.output.read_text()), 20, "the first access block")
    assert any(line.startswith("File browser password (generated") for line in first)
    assert "ComfyUI starts once the downloads end (WAIT_FOR_MODELS=true)" in first
    assert pod.comfyui()["state"] == "waiting"

    hub.release.set()
    every = wait_for(
        lambda: (found := blocks(pod.output.read_text())) and len(found) == 2 and found, 30, "again"
    )
    assert pod.comfyui()["ready"]
    assert "ComfyUI starts once the downloads end (WAIT_FOR_MODELS=true)" not in every[-1]
    assert pod.output_tail(1).endswith(RULE)
