"""`ignition start`: the container's entrypoint (under tini): bring the pod up, keep it up."""

from __future__ import annotations

import argparse
import os
import sys

from ignition.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "start",
        help="start the pod: downloads, file browser, ComfyUI; supervise until stopped",
        description=(
            "The container entrypoint. Starts the file browser and ComfyUI at once while models "
            "download (WAIT_FOR_MODELS=true: models first), restarts ComfyUI when it crashes, "
            "and obeys `ignition restart|stop|status`. SIGTERM or SIGINT is a hard stop. "
            "Given a COMMAND (the image's `docker run IMAGE ignition --version`, "
            "`docker run IMAGE bash`), runs that instead of starting the pod."
        ),
        epilog=(
            "example: docker run --gpus all -p 8188:8188 -p 8080:8080 IMAGE "
            "(the image's entrypoint is `ignition start`)"
        ),
    )
    parser.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="COMMAND",
        help="run this instead of the pod (Docker appends `docker run IMAGE ARGS` here)",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.command:
        # The entrypoint is `tini -- ignition start`, so Docker's CMD arrives here; replace
        # this process so tini reaps the command directly and its exit code is the container's.
        try:
            os.execvp(args.command[0], args.command)  # noqa: S606 - argv, as the user typed it
        except FileNotFoundError:
            print(f"ignition start: command not found: {args.command[0]}", file=sys.stderr)
            return 127
    # Imported here: every other command (the HEALTHCHECK's `status` above all) skips aiohttp.
    from ignition.run.pod import run_until_stopped
    from ignition.run.steps import default_steps

    run_until_stopped(load_settings(), default_steps())
