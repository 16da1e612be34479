"""`ignition nuke [--yes]`: delete user data and models for a fresh start (see ignition.nuke)."""

from __future__ import annotations

import argparse
import sys

from ignition import nuke
from ignition.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "nuke",
        help="delete all user data and models (fresh start)",
        description=(
            "Delete ComfyUI's user/, input/, output/, temp/, logs/ and models/ contents, the "
            "temp dir and HOME's caches, config and shell history. Never touches "
            "PERSISTENT_STORAGE, never follows symlinks."
        ),
        epilog="example: ignition nuke --yes",
    )
    parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    planned = nuke.check(settings)
    if not args.yes:
        if not sys.stdin.isatty():
            print(
                "error: nuke deletes all user data and models; stdin is not a terminal, so it "
                "cannot ask — run `ignition nuke --yes` to confirm",
                file=sys.stderr,
            )
            return 2
        print("This deletes, for good:")
        for root in planned:
            print(f"  {root.path}{'/*' if root.contents_only else ''}")
        if settings.persistent_store is not None:
            print(f"Kept: {settings.persistent_store} (PERSISTENT_STORAGE)")
        if input("Delete all of this? [y/N] ").strip().lower() not in {"y", "yes"}:
            print("Nothing deleted.")
            return 1
    print("💣 NUKE: deleting user data and models …")
    report = nuke.nuke(settings)
    print("\n".join(nuke.describe(report)))
    return 1 if report.failures else 0
