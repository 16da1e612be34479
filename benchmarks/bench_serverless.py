"""The serverless worker's cost: per-job overhead, and worker start → first job done.

    python benchmarks/bench_serverless.py

1. Overhead per job: the median of 50 small text-to-image jobs (3 sampler steps, a different
   seed each, so nothing is served from ComfyUI's cache) sent to `/runsync` of runpod-python's
   local API, against the same 50 posted straight to ComfyUI (websocket, POST /prompt, wait for
   the end, /history, /view) — the same ComfyUI (the executing stand-in), in the same run.
2. Start → first job done, with the model set already present: a first worker fetches one
   CivitAI model (fake hub on loopback) onto the "network volume"; a second worker on the same
   volume is timed from its launch to its first `/runsync` answer.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from fakes.civitai import CivitaiFile, FakeCivitai
from fakes.content import model_bytes
from fakes.storage import FakeStorage
from ignition._http import HttpClient, WebSocketMessageType
from serverless_harness import Worker, make_worker, text_to_image

JOBS = 50


def _workflow(seed: int, checkpoint: str | None = None) -> dict[str, Any]:
    workflow = text_to_image(f"bench {seed}", **({"checkpoint": checkpoint} if checkpoint else {}))
    workflow["3"]["inputs"]["seed"] = seed
    return workflow


def _through_worker(worker: Worker) -> list[float]:
    times = []
    for seed in range(JOBS):
        began = time.perf_counter()
        answer = worker.runsync({"workflow": _workflow(seed)})
        times.append(time.perf_counter() - began)
        assert answer["status"] == "COMPLETED", answer
    return times


async def _straight_to_comfyui(port: int) -> list[float]:
    base = f"http://127.0.0.1:{port}"
    times = []
    async with HttpClient() as client:
        for seed in range(JOBS, 2 * JOBS):
            began = time.perf_counter()
            client_id = uuid.uuid4().hex
            async with client.websocket(f"ws://127.0.0.1:{port}/ws?clientId={client_id}") as ws:
                body = {"prompt": _workflow(seed), "client_id": client_id}
                async with client.request("POST", f"{base}/prompt", json=body) as response:
                    prompt_id = (await response.json())["prompt_id"]
                async for message in ws:
                    if message.type != WebSocketMessageType.TEXT:
                        continue
                    event = json.loads(message.data)
                    data = event.get("data") or {}
                    done = event["type"] == "executing" and data.get("node") is None
                    if done and data.get("prompt_id") == prompt_id:
                        break
            history = await client.get_json(f"{base}/history/{prompt_id}")
            assert isinstance(history, dict)
            for ui in history[prompt_id]["outputs"].values():
                for image in ui.get("images", []):
                    query = (
                        f"filename={image['filename']}&subfolder={image['subfolder']}&type=output"
                    )
                    async with client.get(f"{base}/view?{query}") as response:
                        await response.read()
            times.append(time.perf_counter() - began)
    return times


def overhead() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        worker = make_worker(Path(tmp)).start()
        try:
            worker.runsync({"workflow": _workflow(-1)})  # first-use costs out of the way
            direct = asyncio.run(_straight_to_comfyui(worker.pod.port))
            via = _through_worker(worker)
        finally:
            worker.stop()
    direct_ms, via_ms = statistics.median(direct) * 1000, statistics.median(via) * 1000
    print(f"jobs: {JOBS} each, median")
    print(f"  straight to ComfyUI:        {direct_ms:7.1f} ms")
    print(f"  through the worker:         {via_ms:7.1f} ms")
    print(f"  overhead per job:           {via_ms - direct_ms:7.1f} ms")


def start_to_first_job() -> None:
    storage = FakeStorage()
    civitai = FakeCivitai(storage)
    for server in (storage.server, civitai.server):
        server.start()
    civitai.add(501, files=[CivitaiFile(5010, "bench.safetensors", model_bytes("b", 8 << 20))])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            volume = Path(tmp) / "volume"
            volume.mkdir()
            env = {
                "CIVITAI_ENDPOINT": civitai.url,
                "CIVITAI_MODELS": "501",
                "IGNITION_SERVERLESS_VOLUME": str(volume),
            }
            times = []
            for run in ("first", "second"):
                worker = make_worker(Path(tmp) / run, **env)
                began = time.perf_counter()
                worker.start()
                answer = worker.runsync({"workflow": _workflow(1, "bench.safetensors")})
                times.append(time.perf_counter() - began)
                worker.stop()
                assert answer["status"] == "COMPLETED", answer
    finally:
        for server in (storage.server, civitai.server):
            server.stop()
    print(f"start → first job done, model fetched (8 MiB):   {times[0]:6.2f} s")
    print(f"start → first job done, model already present: {times[1]:6.2f} s")


if __name__ == "__main__":
    overhead()
    start_to_first_job()
