"""`ignition start`: the container's entrypoint (under tini): bring the pod up, keep it up."""

from __future__ import annotations

import argparse

from ignition.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "start",
        help="start the pod: downloads, file browser, ComfyUI; supervise until stopped",
        description=(
            "The container entrypoint. Starts the file browser and ComfyUI at once while models "
            "download (WAIT_FOR_MODELS=true: models first), restarts ComfyUI when it crashes, "
            "and obeys `ignition restart|stop|status`. SIGTERM or SIGINT is a hard stop."
        ),
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    # Imported here: every other command (the HEALTHCHECK's `status` above all) skips aiohttp.
    from ignition.run.pod import run_until_stopped
    from ignition.run.steps import default_steps

    run_until_stopped(load_settings(), default_steps())
