"""`ignition verify`: re-hash every file Ignition recorded; exit non-zero if any is missing or
changed (its record is dropped, so the next `ignition download` fetches it again)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ignition.cli._paths import require_model_folders
from ignition.place.manifest import Manifest
from ignition.place.present import Rechecked, recheck_all
from ignition.progress import format_bytes
from ignition.settings import load_settings

EXIT_OK = 0
EXIT_PROBLEMS = 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="re-hash every downloaded model and report missing or changed files",
        description=(
            "Read every file recorded in the manifests of the models folder and of "
            "PERSISTENT_STORAGE, and compare its sha256 with the one verified at download. "
            "Missing or changed files are reported and forgotten, so `ignition download` "
            "fetches them again. Exit 0 only if every file matches."
        ),
        epilog="example: ignition verify --models-dir /workspace/ComfyUI/models",
    )
    parser.add_argument("--models-dir", type=Path, metavar="DIR", help="ComfyUI models folder")
    parser.add_argument("--json", action="store_true", help="machine-readable results")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings(models_dir_override=args.models_dir)
    require_model_folders(settings, args)
    roots = [settings.models_dir]
    if settings.persistent_store is not None and settings.persistent_store != roots[0]:
        roots.append(settings.persistent_store)
    results = {root: recheck_all(Manifest(root), _checking) for root in roots}
    problems = sum(1 for found in results.values() for item in found if item.status != "ok")
    if args.json:
        print(json.dumps(_as_json(results), indent=2))
    else:
        _print(results, problems)
    return EXIT_PROBLEMS if problems else EXIT_OK


def _checking(relative: str, size_bytes: int) -> None:
    # Hashing a 20 GB file takes a while: show what is being read (stderr; stdout stays clean).
    print(f"checking {relative} ({format_bytes(size_bytes)})", file=sys.stderr, flush=True)


def _as_json(results: dict[Path, list[Rechecked]]) -> dict[str, Any]:
    return {
        "ok": all(item.status == "ok" for found in results.values() for item in found),
        "roots": {
            str(root): [
                {"path": item.relative, "status": item.status, "detail": item.detail}
                for item in found
            ]
            for root, found in results.items()
        },
    }


def _print(results: dict[Path, list[Rechecked]], problems: int) -> None:
    total = 0
    for root, found in results.items():
        total += len(found)
        for item in found:
            if item.status != "ok":
                print(f"{item.status:<7} {root / item.relative}  {item.detail}".rstrip())
    if not total:
        print(f"no downloaded files recorded under {', '.join(map(str, results))}")
        return
    print(f"{total - problems} of {total} recorded files match")
    if problems:
        print("run `ignition download` to fetch the missing and changed files again")
