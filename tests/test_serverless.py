"""The serverless worker through runpod-python's local API, ComfyUI being the executing stand-in:
what a worker-comfyui client sends, and what Ignition adds (other outputs, URLs, progress)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pod_harness import REPO
from serverless_harness import Recorder, Worker, completed, make_worker, png_data_uri, text_to_image
from standins.comfyui_exec.nodes import png
from support import wait_for


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    server.server.start()
    yield server
    server.server.stop()


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory, recorder: Recorder) -> Iterator[Worker]:
    root = tmp_path_factory.mktemp("worker")
    warm_up = root / "warm-up.json"
    warm_up.write_text(json.dumps(text_to_image("warming up")), encoding="utf-8")
    started = make_worker(
        root,
        RUNPOD_WEBHOOK_POST_OUTPUT=f"{recorder.url}/progress?id=$ID",
        IGNITION_WARMUP_WORKFLOW=str(warm_up),
    ).start()
    yield started
    started.stop()


def _job_files(worker: Worker) -> list[Path]:
    base = worker.comfyui_base
    return [p for kind in ("output", "temp") for p in (base / kind).rglob("*") if p.is_file()]


def test_text_to_image_returns_the_image_as_base64(worker: Worker) -> None:
    output = completed(worker.runsync({"workflow": text_to_image()}))

    [image] = output["images"]
    assert image["filename"] == "ComfyUI_00001_.png" and image["type"] == "base64"
    assert base64.b64decode(image["data"]).startswith(b"\x89PNG")
    assert "files" not in output
    assert _job_files(worker) == []  # the job's output is gone once it is returned


def _progress(recorder: Recorder) -> list[dict[str, Any]]:
    return [json.loads(body)["output"] for body in list(recorder.posted)]


def _nodes_started(recorder: Recorder, last: str) -> set[str]:
    # runpod-python posts each update from a thread of its own: they may trail the result.
    wait_for(lambda: any(u["node"] == last for u in _progress(recorder)), 10, f"node {last}")
    return {u["node"] for u in _progress(recorder) if "value" not in u}


def test_an_identical_job_sent_again_still_returns_its_image(
    worker: Worker, recorder: Recorder
) -> None:
    workflow = text_to_image("the same prompt twice")
    first = completed(worker.runsync({"workflow": workflow}))
    recorder.posted.clear()

    second = completed(worker.runsync({"workflow": workflow}))

    assert second["images"] == first["images"]
    assert len(second["images"]) == 1
    # Served from ComfyUI's cache but for the output node, whose file the first job removed.
    assert _nodes_started(recorder, last="9") == {"9"}
    assert _job_files(worker) == []


def test_the_standin_caches_node_results_like_comfyui(worker: Worker) -> None:
    """Without a per-job prefix the second prompt runs nothing and names the first's file."""
    prompt = text_to_image("sent straight to ComfyUI")

    def run() -> dict[str, Any]:
        queued = worker.post_comfyui("/prompt", {"prompt": prompt})
        return wait_for(lambda: worker.pod.get(f"/history/{queued['prompt_id']}"), 10, "done")

    first, second = run(), run()

    [entry_1], [entry_2] = first.values(), second.values()
    assert entry_1["outputs"] == entry_2["outputs"]  # the same file, from the cache
    for image in entry_1["outputs"]["9"]["images"]:
        (worker.comfyui_base / "output" / image["filename"]).unlink()


def test_every_other_output_comes_back_with_its_media_type(worker: Worker) -> None:
    workflow = text_to_image()
    workflow["20"] = {
        "class_type": "StandinSaveVideo",
        "inputs": {"images": ["8", 0], "filename_prefix": "video/ComfyUI"},
    }
    workflow["21"] = {"class_type": "StandinSaveAudio", "inputs": {"filename_prefix": "audio/a"}}
    workflow["22"] = {"class_type": "StandinSave3D", "inputs": {"filename_prefix": "mesh"}}
    workflow["23"] = {"class_type": "StandinShowText", "inputs": {"text": "a caption"}}
    workflow["24"] = {"class_type": "PreviewImage", "inputs": {"images": ["8", 0]}}

    output = completed(worker.runsync({"workflow": workflow}))

    assert [image["filename"] for image in output["images"]] == ["ComfyUI_00001_.png"]
    files = {entry["node"]: entry for entry in output["files"]}
    assert files["20"]["media_type"] == "video/mp4" and files["20"]["type"] == "base64"
    assert files["21"]["media_type"] == "audio/flac"
    assert files["22"]["media_type"] == "model/gltf-binary"
    assert files["23"] == {
        "filename": None,
        "media_type": "text/plain",
        "type": "text",
        "data": "a caption",
        "node": "23",
    }
    assert "24" not in files  # previews are temp files, not outputs
    assert _job_files(worker) == []


def test_the_request_body_of_worker_comfyuis_readme(worker: Worker) -> None:
    """README "Input": node 6 and an input image as a data URI; the graph around them added."""
    image = png(4, 4, "input")
    body = {
        "input": {
            "workflow": {
                "6": {
                    "inputs": {"text": "a ball on the table", "clip": ["30", 1]},
                    "class_type": "CLIPTextEncode",
                    "_meta": {"title": "CLIP Text Encode (Positive Prompt)"},
                },
                "30": {
                    "class_type": "CheckpointLoaderSimple",
                    "inputs": {"ckpt_name": "standin.safetensors"},
                },
                "31": {"class_type": "LoadImage", "inputs": {"image": "input_image_1.png"}},
                "32": {"class_type": "StandinShowText", "inputs": {"text": "done"}},
                "33": {
                    "class_type": "SaveImage",
                    "inputs": {"images": ["31", 0], "filename_prefix": "ComfyUI"},
                },
            },
            "images": [{"name": "input_image_1.png", "image": png_data_uri(image)}],
        }
    }

    output = completed(worker.post("/runsync", body))

    [saved] = output["images"]
    assert base64.b64decode(saved["data"]) == image
    assert not (worker.comfyui_base / "input" / "input_image_1.png").exists()


def test_a_job_sent_to_run_is_run_by_status(worker: Worker) -> None:
    queued = worker.post("/run", {"input": {"workflow": text_to_image("later")}})
    assert queued["status"] == "IN_PROGRESS"

    done = worker.post(f"/status/{queued['id']}", {})

    assert done["id"] == queued["id"]
    assert completed(done)["images"][0]["filename"] == "ComfyUI_00001_.png"


def test_progress_is_posted_for_every_node_and_sampler_step(
    worker: Worker, recorder: Recorder
) -> None:
    recorder.posted.clear()
    completed(worker.runsync({"workflow": text_to_image("progress", steps=4)}))

    wait_for(lambda: any(u.get("value") == 4 for u in _progress(recorder)), 10, "step 4")
    updates = _progress(recorder)
    steps = sorted(u["value"] for u in updates if u["class_type"] == "KSampler" and "value" in u)
    assert steps == [1, 2, 3, 4]
    assert {u["max"] for u in updates if "max" in u} == {4}
    started = {u["node"] for u in updates if "value" not in u}
    assert {"3", "8", "9"} <= started  # sampler, decode and save ran (the loaders were cached)
    assert all(json.loads(body)["status"] == "IN_PROGRESS" for body in recorder.posted)


def test_a_value_comfyui_refuses_is_named_by_node_class_and_input(worker: Worker) -> None:
    answer = worker.runsync({"workflow": text_to_image(checkpoint="missing.safetensors")})

    assert answer["status"] == "FAILED"
    error = answer["error"]
    assert "node 4 (CheckpointLoaderSimple) input ckpt_name" in error
    assert "missing.safetensors" in error and "Value not in list" in error


def test_a_node_comfyui_does_not_have_is_named(worker: Worker) -> None:
    workflow = text_to_image()
    workflow["12"] = {"class_type": "NoSuchNode", "inputs": {}, "_meta": {"title": "Upscale"}}

    error = worker.runsync({"workflow": workflow})["error"]

    assert "node 12 (NoSuchNode)" in error and "custom node" in error


def test_input_errors_say_what_is_wrong(worker: Worker) -> None:
    assert worker.runsync({})["error"].startswith("Missing 'workflow' parameter")
    bad_image = {"workflow": text_to_image(), "images": [{"name": "a.png", "image": "%%%"}]}
    assert "neither base64" in worker.runsync(bad_image)["error"]
    sneaky = {"workflow": text_to_image(), "images": [{"name": "../x.png", "image": "AAAA"}]}
    assert "not a plain file name" in worker.runsync(sneaky)["error"]


def test_an_image_url_on_a_private_address_is_refused(worker: Worker, recorder: Recorder) -> None:
    recorder.files["/in.png"] = png(2, 2, "url")
    job = {
        "workflow": text_to_image(),
        "images": [{"name": "in.png", "image": f"{recorder.url}/in.png"}],
    }

    error = worker.runsync(job)["error"]

    assert "in.png" in error and "loopback" in error
    assert "IGNITION_ALLOW_PRIVATE_URLS" in error


def _ui_workflow() -> dict[str, Any]:
    """What ComfyUI's Save writes for the default graph, with a Reroute and a Note."""

    def node(node_id: int, kind: str, widgets: list[Any], inputs: list[Any]) -> dict[str, Any]:
        slots = [{"name": name, "type": t, "link": link} for name, t, link in inputs]
        return {"id": node_id, "type": kind, "mode": 0, "inputs": slots, "widgets_values": widgets}

    return {
        "last_node_id": 10,
        "nodes": [
            node(4, "CheckpointLoaderSimple", ["standin.safetensors"], []),
            node(6, "CLIPTextEncode", ["from the UI"], [("clip", "CLIP", 1)]),
            node(7, "CLIPTextEncode", ["blurry"], [("clip", "CLIP", 2)]),
            node(5, "EmptyLatentImage", [8, 8, 1], []),
            node(
                3,
                "KSampler",
                [7, "randomize", 2, 8.0, "euler", "normal", 1.0],
                [
                    ("model", "MODEL", 3),
                    ("positive", "CONDITIONING", 4),
                    ("negative", "CONDITIONING", 5),
                    ("latent_image", "LATENT", 6),
                ],
            ),
            node(8, "VAEDecode", [], [("samples", "LATENT", 7), ("vae", "VAE", 8)]),
            node(10, "Reroute", [], [("", "*", 9)]),
            node(9, "SaveImage", ["ComfyUI"], [("images", "IMAGE", 10)]),
            node(11, "Note", ["a comment"], []),
        ],
        "links": [
            [1, 4, 1, 6, 0, "CLIP"],
            [2, 4, 1, 7, 0, "CLIP"],
            [3, 4, 0, 3, 0, "MODEL"],
            [4, 6, 0, 3, 1, "CONDITIONING"],
            [5, 7, 0, 3, 2, "CONDITIONING"],
            [6, 5, 0, 3, 3, "LATENT"],
            [7, 3, 0, 8, 0, "LATENT"],
            [8, 4, 2, 8, 1, "VAE"],
            [9, 8, 0, 10, 0, "IMAGE"],
            [10, 10, 0, 9, 0, "IMAGE"],
        ],
    }


def test_a_ui_format_workflow_is_converted(worker: Worker) -> None:
    output = completed(worker.runsync({"workflow": _ui_workflow()}))

    assert output["images"][0]["filename"] == "ComfyUI_00001_.png"


def test_a_ui_format_workflow_with_an_unknown_node_is_refused_with_how_to_export(
    worker: Worker,
) -> None:
    workflow = _ui_workflow()
    workflow["nodes"][0]["type"] = "SomePackLoader"

    error = worker.runsync({"workflow": workflow})["error"]

    assert "node 4 is a 'SomePackLoader'" in error and "Export (API)" in error


def test_the_hub_tests_pass_on_the_worker(worker: Worker) -> None:
    hub_tests = json.loads((REPO / ".runpod" / "tests.json").read_text(encoding="utf-8"))

    for case in hub_tests["tests"]:
        output = completed(worker.runsync(case["input"]))
        assert output["images"], case["name"]


def test_ignition_status_works_on_a_worker(worker: Worker) -> None:
    done = worker.pod.cli("status", "--json")

    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["supervisor"]["mode"] == "serverless worker"
    assert status["services"]["comfyui"]["ready"] is True


def test_the_warm_up_workflow_ran_before_the_first_job(worker: Worker) -> None:
    log = worker.log()
    assert "warm-up workflow done" in log
    assert log.index("warm-up workflow done") < log.index("Starting Serverless Worker")
