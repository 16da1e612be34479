"""`ignition download`: provision models, print the summary, exit 0 only if all are in place."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from ignition.cli._paths import require_model_folders
from ignition.progress import RunDisplay, format_bytes
from ignition.report import ProvisionReport
from ignition.settings import Settings, load_settings

# 0: every file in place; 1: at least one model failed; 2: unusable flags or settings;
# 130: interrupted (partials are kept and resumed by the next run).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "download",
        help="download models into ComfyUI's folders and exit",
        description=(
            "Resolve, download, verify and install models and custom node packs. Without "
            "--civitai/--hf/--workflow/--nodes the lists come from CIVITAI_MODELS, "
            "HUGGINGFACE_MODELS, COMFYUI_WORKFLOWS and COMFYUI_NODES; with any of these flags, "
            "the flags replace all four env lists. Tokens come only from the environment "
            "(CIVITAI_TOKEN, HF_TOKEN, GITHUB_TOKEN), never from flags, so they never show up "
            "in `ps`."
        ),
        epilog="example: ignition download --hf clip_l,ae --models-dir ./models --dry-run",
    )
    parser.add_argument("--civitai", metavar="LIST", help="CivitAI version ids or URLs")
    parser.add_argument("--hf", metavar="LIST", help="HF short names, repos, files or URLs")
    parser.add_argument(
        "--workflow",
        action="append",
        metavar="FILE_OR_URL",
        help="a ComfyUI workflow whose models to provision (repeatable)",
    )
    parser.add_argument(
        "--manifest",
        metavar="FILE_OR_URL",
        help="ignition.yaml whose lists add to the others (default: IGNITION_MANIFEST); "
        "with ignition.lock beside it, exactly the locked files",
    )
    parser.add_argument(
        "--nodes",
        metavar="LIST",
        help="custom node packs: registry ids[@version], git URLs[@ref], owner/repo[@ref]",
    )
    parser.add_argument("--models-dir", type=Path, metavar="DIR", help="ComfyUI models folder")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, fetch nothing")
    parser.add_argument("--json", action="store_true", help="machine-readable plan and summary")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    overrides: dict[str, Any] = {
        "models_dir_override": args.models_dir,
        "ignition_manifest": args.manifest,
    }
    if args.civitai is not None or args.hf is not None or args.nodes is not None or args.workflow:
        overrides["civitai_models"] = args.civitai or ""
        overrides["huggingface_models"] = args.hf or ""
        overrides["comfyui_nodes"] = args.nodes or ""
        overrides["comfyui_workflows"] = ",".join(args.workflow or ())
    settings = load_settings(**overrides)  # a bad value is reported by cli.main
    require_model_folders(settings, args)
    for warning in settings.unresolved_secret_warnings():
        print(f"warning: {warning}", file=sys.stderr)
    # Progress goes to stderr; stdout carries only the summary (or JSON) for scripts. When
    # both end in the same log, the summary table lists each file: progress does not repeat it.
    display = RunDisplay(
        settings.status_file,
        stream=sys.stderr,
        tty=sys.stderr.isatty(),
        list_finished=args.json or not _same_destination(sys.stdout, sys.stderr),
    )
    from ignition.pipeline import free_bytes_at
    from ignition.place.store import models_root

    started = time.monotonic()
    try:
        report = asyncio.run(_provision_everything(settings, dry_run=args.dry_run, display=display))
    except KeyboardInterrupt:
        print(
            "interrupted: partial downloads are kept and resume on the next `ignition download`",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        root = models_root(settings)
        free_after = free_bytes_at(root) if root.is_dir() else report.free_bytes
        print_summary(
            report,
            dry_run=args.dry_run,
            elapsed_s=time.monotonic() - started,
            free_bytes=free_after,
        )
    return EXIT_OK if report.ok else EXIT_FAILED


def _same_destination(first: Any, second: Any) -> bool:
    try:
        a, b = os.fstat(first.fileno()), os.fstat(second.fileno())
    except (OSError, ValueError, AttributeError):
        return False  # not real files (tests' captured streams): keep both listings
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


async def _provision_everything(
    settings: Settings, *, dry_run: bool, display: RunDisplay
) -> ProvisionReport:
    """Node packs first (as `ignition start` does), then models; one report for both."""
    from ignition.nodes_pipeline import provision_nodes
    from ignition.pipeline import provision

    packs = await provision_nodes(settings, dry_run=dry_run, display=display)
    report = await provision(settings, dry_run=dry_run, display=display)
    report.packs = packs.packs
    display.write_status(force=True)
    return report


def print_summary(
    report: ProvisionReport, *, dry_run: bool, elapsed_s: float, free_bytes: int | None
) -> None:
    """One row per model, then the counts, the time taken and the disk space left after it."""
    _print_packs(report)
    if report.packs and not report.outcomes:
        return
    rows = [
        (
            o.status,
            f"{o.folder}/{o.filename}" if o.filename else o.name,
            format_bytes(o.size),
            o.source,
            # The code too: it is what `--json`, downloads.json and the docs' tables key on.
            f"[{o.code}] {o.error}" if o.error and o.code else o.error or "; ".join(o.warnings),
        )
        for o in report.outcomes
    ]
    if not rows:
        print("nothing to download (CIVITAI_MODELS, HUGGINGFACE_MODELS, COMFYUI_WORKFLOWS empty)")
        return
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row, outcome in zip(rows, report.outcomes, strict=True):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[4]]).rstrip())
        if outcome.error and outcome.hint:
            print(f"{'':{sum(widths) + 8}}hint: {outcome.hint}")
    counts = ", ".join(
        f"{report.count(status)} {status}"
        for status in ("ok", "skipped", "planned", "duplicate", "missing", "failed")
        if report.count(status)
    )
    plan = f"; {format_bytes(report.needed_bytes)} to fetch" if dry_run else ""
    free = f", {format_bytes(free_bytes)} free" if free_bytes is not None else ""
    print(f"{counts}{plan}{free}; {elapsed_s:.1f} s")


def _print_packs(report: ProvisionReport) -> None:
    """One line per node pack: state, folder, source, version or commit, and why."""
    rows = [
        (
            pack.status,
            pack.folder or pack.name,
            f"{pack.source}{' (guess)' if pack.guess else ''}",
            pack.version or (pack.commit or "")[:12] or "-",
            pack.error or "; ".join(pack.warnings),
        )
        for pack in report.packs
    ]
    widths = [max((len(row[i]) for row in rows), default=0) for i in range(4)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join(["node", *cells, row[4]]).rstrip())
    if rows:
        statuses = dict.fromkeys(pack.status for pack in report.packs)
        counts = ", ".join(f"{sum(p.status == s for p in report.packs)} {s}" for s in statuses)
        print(f"node packs: {counts}")
