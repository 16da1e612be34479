"""`ignition stop`: hard stop: services down, nuke (if ComfyUI was ever ready), container exits."""

from __future__ import annotations

import argparse
import sys

from ignition.cli._control_client import NOT_RUNNING, ask
from ignition.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "stop",
        help="hard stop: stop every service, run the nuke, end the container",
        description=(
            "Stops ComfyUI and the file browser, runs the nuke when ComfyUI had become ready and "
            "NUKE_ON_STOP is true (deleting models and user data), and ends the container."
        ),
        epilog="example: ignition stop",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    reply = ask(load_settings(), {"command": "stop"}, timeout_s=60)
    if reply is None:
        return NOT_RUNNING
    if not reply.get("ok"):
        print(f"stop failed: {reply.get('error')}", file=sys.stderr)
        return 1
    print(f"stopped; nuke: {reply.get('nuke')}")
    return 0
