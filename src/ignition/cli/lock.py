"""`ignition lock`: write ignition.lock for a manifest, check it, or snapshot this pod."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from ignition.atomic import write_atomic
from ignition.errors import ConfigError
from ignition.progress import format_bytes
from ignition.report import ProvisionReport
from ignition.settings import Settings, load_settings

# 0: lock written (or matches); 1: an entry could not be locked, or the lock is stale;
# 2: unusable manifest, lock or flags (printed by cli.main).
EXIT_OK = 0
EXIT_FAILED = 1
DEFAULT_MANIFEST = "ignition.yaml"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "lock",
        help="pin a manifest's models, node packs and Python packages in ignition.lock",
        description=(
            "Resolve everything MANIFEST names (default: IGNITION_MANIFEST, else ./ignition.yaml) "
            "and write ignition.lock beside it: per model file its source, folder, filename, "
            "size and sha256, taken from the sources' APIs (a file no API states a hash for is "
            "fetched once and hashed); per node pack its version and archive sha256 or its git "
            "commit; the Python packages the packs and `python` entries need, exact versions "
            "with hashes, as uv resolves them beside COMFYUI_PYTHON's torch. A pod started with "
            "the manifest and this lock provisions exactly these. Only the manifest is locked, "
            "never CIVITAI_MODELS & co."
        ),
        epilog="example: ignition lock ignition.yaml && ignition lock --check ignition.yaml",
    )
    parser.add_argument("manifest", nargs="?", metavar="MANIFEST", help="path or http(s) URL")
    parser.add_argument(
        "-o", "--output", metavar="LOCK", help="where the lock is (default: beside MANIFEST)"
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check",
        action="store_true",
        help="exit 0 if the lock still matches the manifest, 1 (and what changed) if not",
    )
    mode.add_argument(
        "--from-running",
        action="store_true",
        help="write MANIFEST and its lock from the models, node packs and added Python "
        "packages on this pod now",
    )
    parser.add_argument("--dry-run", action="store_true", help="show the result, write nothing")
    parser.add_argument("--json", action="store_true", help="machine-readable result")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    manifest = args.manifest or settings.ignition_manifest or DEFAULT_MANIFEST
    from ignition.pin.lockfile import LOCK_NAME
    from ignition.spec.manifest import beside, is_url

    # A manifest read from a URL is locked here; publish the lock beside it.
    output = (
        args.output
        or settings.ignition_lock
        or (LOCK_NAME if is_url(manifest) else beside(manifest, LOCK_NAME))
    )
    if is_url(output):
        raise ConfigError(f"cannot write the lock to {output}", hint="give a path with -o")
    if args.check:
        return _check(settings, manifest, output, as_json=args.json)
    if args.from_running:
        return _from_running(settings, manifest, output, args)
    return _lock(settings, manifest, output, args)


def _lock(settings: Settings, manifest_source: str, output: str, args: argparse.Namespace) -> int:
    from ignition.pin.build import LockResult, build_lock
    from ignition.pipeline import open_client
    from ignition.spec.manifest import load_manifest

    async def go() -> LockResult:
        async with open_client(settings) as client:
            manifest = await load_manifest(client, manifest_source)
        return await build_lock(settings, manifest)

    result = asyncio.run(go())
    lock = result.lock
    text = lock.dumps() if lock is not None else None
    written = text is not None and not args.dry_run and _write(Path(output), text)
    if args.json:
        document = {"ok": text is not None, "lock": output, "written": written}
        reported = result.report.to_json()
        document |= {"models": reported["models"], "packs": reported["packs"]}
        print(json.dumps(document, indent=2))
    else:
        _print_models(result.report)
        _print_packs(result.report)
        if lock is None:
            print(f"not locked: fix the entries above; {output} is unchanged")
            return EXIT_FAILED
        counts = (
            f"{len(lock.models)} files, {len(lock.packs)} packs, "
            f"{len(lock.python.packages)} Python packages"
        )
        if args.dry_run:
            print(f"would write {output} ({counts}; --dry-run)")
        else:
            print(f"{output} {'written' if written else 'unchanged'} ({counts})")
    return EXIT_OK if text is not None else EXIT_FAILED


def _check(settings: Settings, manifest: str, output: str, *, as_json: bool) -> int:
    from ignition.pin.check import lock_differences

    changes = asyncio.run(lock_differences(settings, manifest, output))
    if as_json:
        print(json.dumps({"ok": not changes, "lock": output, "differences": changes}, indent=2))
    elif changes:
        for line in changes:
            print(line)
        print(f"{output} does not match {manifest}: run `ignition lock` to update it")
    else:
        print(f"{output} matches {manifest}")
    return EXIT_FAILED if changes else EXIT_OK


def _from_running(settings: Settings, manifest: str, output: str, args: argparse.Namespace) -> int:
    from ignition.pin.running import Snapshot, snapshot
    from ignition.pipeline import open_client
    from ignition.spec.manifest import is_url

    if is_url(manifest):
        raise ConfigError(f"cannot write the manifest to {manifest}", hint="give a path")

    async def go() -> Snapshot:
        async with open_client(settings) as client:
            return await snapshot(client, settings, origin=manifest)

    taken = asyncio.run(go())
    written = not args.dry_run
    if written:
        _write(Path(manifest), taken.manifest_text())
        _write(Path(output), taken.lock.dumps())
    if args.json:
        document = {
            "ok": True,
            "manifest": manifest,
            "lock": output,
            "written": written,
            "models": [model.relative for model in taken.lock.models],
            "packs": [pack.name for pack in taken.lock.packs],
            "python": [p.requirement().split()[0] for p in taken.lock.python.packages],
            "unlocked": taken.unlocked,
        }
        print(json.dumps(document, indent=2))
        return EXIT_OK
    for model in taken.lock.models:
        print(f"locked    {model.relative}  {format_bytes(model.size)}  {model.sha256[:12]}")
    for pack in taken.lock.packs:
        print(
            f"locked    {pack.folder}  {pack.version or ''}  {pack.commit or pack.archive_sha256}"
        )
    for package in taken.lock.python.packages:
        print(f"locked    python {package.name}=={package.version}")
    for line in taken.unlocked:
        print(f"warning: {line}", file=sys.stderr)
    verb = "wrote" if written else "would write"
    counts = (
        f"{len(taken.lock.models)} files, {len(taken.lock.packs)} packs, "
        f"{len(taken.lock.python.packages)} Python packages"
    )
    print(f"{verb} {manifest} and {output} ({counts})")
    return EXIT_OK


def _write(path: Path, text: str) -> bool:
    """Write `text` to `path` unless it already holds exactly that; True when written."""
    try:
        if path.read_text(encoding="utf-8") == text:
            return False
    except (OSError, UnicodeDecodeError):
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, text)
    return True


def _print_packs(report: ProvisionReport) -> None:
    for pack in report.packs:
        at = pack.version or (pack.commit or "")[:12]
        pin = (pack.archive_sha256 or pack.commit or "")[:12]
        detail = pack.error or "; ".join(pack.warnings)
        print(f"{pack.status}  {pack.folder or pack.name}  {at}  {pin}  {detail}".rstrip())


def _print_models(report: ProvisionReport) -> None:
    rows = [
        (
            outcome.status,
            f"{outcome.folder}/{outcome.filename}" if outcome.filename else outcome.name,
            format_bytes(outcome.size),
            (outcome.sha256 or "")[:12],
            outcome.error or "; ".join(outcome.warnings),
        )
        for outcome in report.outcomes
    ]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[4]]).rstrip())
