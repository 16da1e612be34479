"""`ignition serverless`: run a RunPod Serverless worker (what `ignition start` becomes when
RunPod starts the container for an endpoint, RUNPOD_ENDPOINT_ID set)."""

from __future__ import annotations

import argparse

from ignition.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serverless",
        help="run a RunPod Serverless worker (worker-comfyui compatible jobs)",
        description=(
            "Provision the models, start ComfyUI on 127.0.0.1 (supervised), run the warm-up "
            "workflow, then take jobs through runpod-python. runpod-python's own flags pass "
            "through: `ignition serverless --rp_serve_api --rp_api_port 8000` serves the local "
            "test API (POST /run, /runsync, /status/ID). See docs/serverless.md."
        ),
        epilog=(
            "example: HUGGINGFACE_MODELS=flux1-schnell "
            "ignition serverless --rp_serve_api --rp_api_port 8000"
        ),
    )
    # Every other flag (--rp_serve_api, --rp_api_port N, --test_input JSON …) is runpod-python's.
    parser.set_defaults(handler=_run, pass_through=True)


def _run(args: argparse.Namespace) -> int:
    # Imported here: runpod-python and the worker's modules load only in this mode.
    from ignition.serverless.worker import run_worker

    return run_worker(load_settings(), args.passed_through)
