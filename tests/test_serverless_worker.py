"""The serverless worker's harder paths: per-job models from the fake hubs, image URLs allowed,
S3 uploads to a real S3-compatible server (moto) on loopback, timeout, a ComfyUI crash mid-job,
and a ComfyUI that cannot come up at all."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from fakes.civitai import CivitaiFile, FakeCivitai
from fakes.content import model_bytes
from fakes.huggingface import FakeHuggingFace
from fakes.registry import FakeRegistry, node_pack_files
from fakes.services import Fakes
from fakes.storage import FakeStorage
from ignition.serverless.model_cache import ModelCache
from serverless_harness import Recorder, Worker, completed, make_worker, text_to_image
from standins.comfyui_exec.nodes import png
from support import free_port

BUCKET = "ignition-outputs"


@dataclass
class Services:
    civitai: FakeCivitai
    hf: FakeHuggingFace
    files: Recorder
    s3_url: str


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    storage = FakeStorage()
    civitai, hf, files = FakeCivitai(storage), FakeHuggingFace(storage), Recorder()
    servers = [storage.server, civitai.server, hf.server, files.server]
    for server in servers:
        server.start()
    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    try:
        yield Services(civitai, hf, files, f"http://127.0.0.1:{port}")
    finally:
        moto.stop()
        for server in servers:
            server.stop()


def _s3(services: Services) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=services.s3_url,
        aws_access_key_id="test-key-id",
        aws_secret_access_key="test-secret-key",
        region_name="us-east-1",
    )


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory, services: Services) -> Iterator[Worker]:
    _s3(services).create_bucket(Bucket=BUCKET)
    started = make_worker(
        tmp_path_factory.mktemp("worker"),
        CIVITAI_ENDPOINT=services.civitai.url,
        HF_ENDPOINT=services.hf.url,
        IGNITION_ALLOW_PRIVATE_URLS="true",
        IGNITION_JOB_TIMEOUT_S="1",
        STANDIN_STEP_S="0.02",
        BUCKET_ENDPOINT_URL=services.s3_url,
        BUCKET_ACCESS_KEY_ID="test-key-id",
        BUCKET_SECRET_ACCESS_KEY="test-secret-key",
        BUCKET_NAME=BUCKET,
        BUCKET_PREFIX="jobs",
        AWS_DEFAULT_REGION="us-east-1",
    ).start()
    yield started
    started.stop()


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - moto on loopback
        data: bytes = response.read()
        return data


def test_outputs_go_to_s3_as_presigned_links(worker: Worker, services: Services) -> None:
    workflow = text_to_image("to the bucket")
    workflow["20"] = {"class_type": "StandinSaveAudio", "inputs": {"filename_prefix": "a"}}

    output = completed(worker.runsync({"workflow": workflow}))

    [image] = output["images"]
    assert image["type"] == "s3_url" and image["filename"] == "ComfyUI_00001_.png"
    assert _fetch(image["data"]).startswith(b"\x89PNG")
    [audio] = output["files"]
    assert audio["type"] == "s3_url" and audio["media_type"] == "audio/flac"
    keys = [o["Key"] for o in _s3(services).list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert all(key.startswith("jobs/test-") for key in keys) and len(keys) == 2


def test_an_image_url_is_fetched_when_private_addresses_are_allowed(
    worker: Worker, services: Services
) -> None:
    image = png(3, 3, "from a url")
    services.files.files["/inputs/photo.png"] = image
    workflow = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "photo.png"}},
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
    }
    url = f"{services.files.url}/inputs/photo.png"

    output = completed(
        worker.runsync({"workflow": workflow, "images": [{"name": "photo.png", "image": url}]})
    )

    assert _fetch(output["images"][0]["data"]) == image


def test_a_jobs_models_are_fetched_before_it_is_queued(worker: Worker, services: Services) -> None:
    data = model_bytes("job-model")
    services.civitai.add(7001, files=[CivitaiFile(70010, "jobmodel.safetensors", data)])
    job = {
        "workflow": text_to_image(checkpoint="jobmodel.safetensors"),
        "models": {"civitai": ["7001"]},
    }

    completed(worker.runsync(job))

    placed = worker.comfyui_base / "models" / "checkpoints" / "jobmodel.safetensors"
    assert placed.read_bytes() == data


def test_a_model_that_cannot_be_provided_fails_the_job_with_its_error(worker: Worker) -> None:
    job = {"workflow": text_to_image(), "models": {"civitai": "7999"}}

    error = worker.runsync(job)["error"]

    assert "7999" in error and "could not be provided" in error


def test_a_job_over_its_timeout_is_interrupted(worker: Worker) -> None:
    answer = worker.runsync({"workflow": text_to_image("slow", steps=500)})

    assert "IGNITION_JOB_TIMEOUT_S=1" in answer["error"]
    assert "interrupted" in worker.log()
    # ComfyUI stopped the prompt: the next job runs at once.
    completed(worker.runsync({"workflow": text_to_image("after the timeout")}))


def test_a_comfyui_crash_fails_the_job_and_comfyui_comes_back(worker: Worker) -> None:
    workflow = text_to_image("crash")
    workflow["20"] = {"class_type": "StandinCrash", "inputs": {"images": ["8", 0]}}
    del workflow["9"]

    error = worker.runsync({"workflow": workflow})["error"]

    assert "ComfyUI closed its connection" in error
    assert "exit code 3" in error and "StandinCrash node executed" in error
    # The supervisor restarts it; the next job waits for it and runs.
    completed(worker.runsync({"workflow": text_to_image("after the crash")}))


def test_a_comfyui_that_cannot_start_fails_every_job_with_its_last_lines(
    tmp_path: Path,
) -> None:
    broken = make_worker(tmp_path)
    (broken.comfyui_base).mkdir(parents=True, exist_ok=True)
    (broken.comfyui_base / "standin-crash").write_text("4")
    broken.start(timeout_s=90)
    try:
        for _ in range(2):
            error = broken.runsync({"workflow": text_to_image()})["error"]
            assert "ComfyUI could not be started" in error
            assert "crashing at start as asked" in error and "exit code 4" in error
    finally:
        broken.stop()


async def test_the_model_cache_evicts_the_least_recently_used(fakes: Fakes) -> None:
    first, second = model_bytes("first", 4096), model_bytes("second", 4096)
    fakes.civitai.add(1, files=[CivitaiFile(10, "first.safetensors", first)])
    fakes.civitai.add(2, files=[CivitaiFile(20, "second.safetensors", second)])
    # Room for one of them: the older goes when the second arrives.
    cache = ModelCache(fakes.settings(model_cache_gb=6000 / 1024**3))
    [kept] = await cache.provide("1", "")
    assert kept.read_bytes() == first

    [placed] = await cache.provide("2", "")

    assert placed.read_bytes() == second and not kept.exists()
    [again] = await cache.provide("1", "")  # fetched again when asked again
    assert again.read_bytes() == first and not placed.exists()


def test_start_becomes_the_worker_on_a_serverless_endpoint(tmp_path: Path) -> None:
    """RunPod sets RUNPOD_ENDPOINT_ID; without its job queue runpod-python runs the one job in
    ./test_input.json and exits 0 when it succeeded."""
    worker = make_worker(tmp_path, RUNPOD_ENDPOINT_ID="endpoint-1")
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    (job_dir / "test_input.json").write_text(json.dumps({"input": {"workflow": text_to_image()}}))

    done = subprocess.run(
        [sys.executable, "-m", "ignition", "start"],
        env=worker.pod.env,
        cwd=job_dir,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )

    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "starting a serverless worker" in said and "ComfyUI_00001_.png" in said


def test_a_worker_installs_its_node_packs_before_comfyui_starts(
    tmp_path: Path, registry: FakeRegistry
) -> None:
    registry.publish("worker-pack", "1.0.0", node_pack_files("WorkerNode"))
    worker = make_worker(
        tmp_path, COMFYUI_NODES="worker-pack@1.0.0", COMFY_REGISTRY_ENDPOINT=registry.url
    ).start(timeout_s=90)
    try:
        assert (worker.comfyui_base / "custom_nodes" / "worker-pack" / ".tracking").is_file()
        log = worker.log()
        assert log.index("nodes: 1 of 1 pack(s) in place") < log.index("To see the GUI go to")
        answer = worker.runsync({"workflow": text_to_image()})
        assert answer["status"] == "COMPLETED", answer
    finally:
        worker.stop()
