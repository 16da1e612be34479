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
        if input("Delete all of this? [y/N] ").strip().lower() not in {"y", "yes"}:
            print("Nothing deleted.")
            return 1
    print("💣 NUKE: deleting user data and models …")
    report = nuke.nuke(settings)
    for result in report.roots:
        if result.files or result.folders:
            print(
                f"  {result.path}: {result.files} files, {result.folders} folders, "
                f"{_size(result.size_bytes)}"
            )
    for path, reason in report.kept:
        print(f"  kept {path} ({reason})")
    for path, why in report.failures:
        print(f"  could not delete {path}: {why}", file=sys.stderr)
    summary = f"{report.files} files and {report.folders} folders ({_size(report.size_bytes)})"
    if report.failures:
        print(f"⚠️  Deleted {summary}; {len(report.failures)} could not be deleted (listed above).")
        return 1
    print(f"✅ Nuclear cleanup complete: deleted {summary}.")
    return 0


def _size(size_bytes: int) -> str:
    value = float(size_bytes)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
