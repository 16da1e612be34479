"""`ignition restart`: soft restart of ComfyUI; models, data and the container stay."""

from __future__ import annotations

import argparse
import sys

from ignition.cli._control_client import NOT_RUNNING, ask
from ignition.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "restart",
        help="soft-restart ComfyUI (new process; models and data kept)",
        description=(
            "Stops ComfyUI and starts it again at once. Models, data and the container stay. "
            "Also retries a ComfyUI that was left down after a crash loop."
        ),
        epilog="example: ignition restart --manager-ui on",
    )
    parser.add_argument(
        "--manager-ui",
        choices=("on", "off"),
        help="switch ComfyUI-Manager's UI for this and later restarts (default: ENABLE_MANAGER_UI "
        "when it is set in this shell, else unchanged)",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    settings = load_settings()
    message: dict[str, object] = {"command": "restart"}
    if args.manager_ui is not None:
        message["manager_ui"] = args.manager_ui == "on"
    elif "enable_manager_ui" in settings.model_fields_set:
        # `ENABLE_MANAGER_UI=true restart-comfyui.sh`: the toggle the seed documents.
        message["manager_ui"] = settings.enable_manager_ui
    reply = ask(settings, message, timeout_s=60)
    if reply is None:
        return NOT_RUNNING
    if not reply.get("ok"):
        print(f"restart failed: {reply.get('error')}", file=sys.stderr)
        return 1
    ui = "on" if reply.get("manager_ui") else "off"
    print(f"ComfyUI restarted (pid {reply.get('pid')}, Manager UI {ui}); models and data kept")
    return 0
