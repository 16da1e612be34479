"""Runs the real `ignition serverless --rp_serve_api` (runpod-python's local API) against the
executing ComfyUI stand-in, every path and port in a temp dir; plus the workflows tests send."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from fakes.server import ServerThread
from pod_harness import REPO, Pod, make_pod
from support import free_port, wait_for

EXEC_STANDIN_DIR = REPO / "tests" / "standins" / "comfyui_exec"
CHECKPOINT = "standin.safetensors"


@dataclass
class Worker:
    pod: Pod  # the environment and folders make_pod lays out
    api_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def output(self) -> Path:
        return self.pod.root / "worker.out"

    @property
    def comfyui_base(self) -> Path:
        return self.pod.workspace / "ComfyUI"

    def log(self) -> str:
        return self.output.read_text(encoding="utf-8", errors="replace")

    def start(self, timeout_s: float = 60) -> Worker:
        argv = [sys.executable, "-m", "ignition", "serverless", "--rp_serve_api"]
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [*argv, "--rp_api_port", str(self.api_port)],
                env=self.pod.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._listening, timeout_s, f"the worker's API; its log:\n{self.log()}")
        return self

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the worker exited early:\n{self.log()}")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.api_port)) == 0

    def post(self, path: str, body: dict[str, Any], timeout_s: float = 60) -> dict[str, Any]:
        """POST to runpod-python's local API."""
        return post_json(f"http://127.0.0.1:{self.api_port}{path}", body, timeout_s)

    def post_comfyui(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST straight to the worker's ComfyUI (on 127.0.0.1:COMFYUI_PORT)."""
        return post_json(f"http://127.0.0.1:{self.pod.port}{path}", body, 10)

    def runsync(self, job_input: dict[str, Any], timeout_s: float = 60) -> dict[str, Any]:
        return self.post("/runsync", {"input": job_input}, timeout_s)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.pod.process = self.process
        self.pod.kill()


def post_json(url: str, body: dict[str, Any], timeout_s: float) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - loopback
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def make_worker(root: Path, **env: str) -> Worker:
    """A worker whose ComfyUI is the executing stand-in, with one checkpoint in place."""
    settings = {
        "IGNITION_SERVERLESS_VOLUME": str(root / "no-volume"),
        "RUNPOD_WEBHOOK_POST_OUTPUT": "http://127.0.0.1:9/unused?id=$ID",
        "UVICORN_LOG_LEVEL": "warning",
        **env,
    }
    pod = make_pod(root, comfyui_dir=EXEC_STANDIN_DIR, **settings)
    checkpoints = pod.workspace / "ComfyUI" / "models" / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    (checkpoints / CHECKPOINT).write_bytes(b"weights")
    return Worker(pod, free_port())


def text_to_image(
    prompt: str = "a ball on the table", *, steps: int = 3, checkpoint: str = CHECKPOINT
) -> dict[str, Any]:
    """ComfyUI's default graph, in the API format."""
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": checkpoint}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": prompt, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "blurry", "clip": ["4", 1]}},
        "5": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1},
        },
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["4", 0],
                "seed": 42,
                "steps": steps,
                "cfg": 8,
                "sampler_name": "euler",
                "scheduler": "normal",
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
                "denoise": 1,
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {
            "class_type": "SaveImage",
            "inputs": {"images": ["8", 0], "filename_prefix": "ComfyUI"},
        },
    }


def png_data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


@dataclass
class Recorder:
    """A loopback server that keeps every body posted to it (runpod-python's progress posts)
    and serves `files` by path (input images by URL)."""

    files: dict[str, bytes] = field(default_factory=dict)
    posted: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._post)
        app.router.add_get("/{tail:.*}", self._get)
        self.server = ServerThread(app)

    @property
    def url(self) -> str:
        return self.server.url

    async def _post(self, request: web.Request) -> web.Response:
        self.posted.append(await request.text())
        return web.json_response({})

    async def _get(self, request: web.Request) -> web.Response:
        data = self.files.get(request.path)
        return web.Response(body=data) if data is not None else web.Response(status=404)


def completed(answer: dict[str, Any]) -> dict[str, Any]:
    """A job's output, after checking that it completed (the answer is shown when not)."""
    assert answer["status"] == "COMPLETED", answer
    output: dict[str, Any] = answer["output"]
    return output
