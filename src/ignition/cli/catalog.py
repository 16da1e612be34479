"""`ignition catalog`: the short names HUGGINGFACE_MODELS / `--hf` accept."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ignition.catalog import CatalogEntry


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "catalog",
        help="list the short model names for HUGGINGFACE_MODELS",
        description=(
            "List Ignition's catalog of short names: name, ComfyUI folder, approximate size, "
            "description and the Hugging Face file it fetches."
        ),
        epilog="example: ignition catalog | grep -i flux",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print the Markdown table of docs/catalog.md"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: loading the resolve package pulls aiohttp, which the HEALTHCHECK's
    # `ignition status` (it builds the same parser) must not pay for.
    from ignition.catalog import load_catalog

    entries = list(load_catalog().values())
    print(markdown_table(entries) if args.markdown else plain_table(entries))
    return 0


def markdown_table(entries: list[CatalogEntry]) -> str:
    lines = [
        "| Name | Folder | Size | Hugging Face file | Description |",
        "|---|---|---:|---|---|",
    ]
    lines += [
        f"| `{e.name}` | {e.folder} | {_size(e)} | `{e.repo}/{e.path}` | {e.description} |"
        for e in entries
    ]
    return "\n".join(lines)


def plain_table(entries: list[CatalogEntry]) -> str:
    header = ("NAME", "FOLDER", "SIZE", "DESCRIPTION", "SOURCE")
    rows = [header, *((e.name, e.folder, _size(e), e.description, _source(e)) for e in entries)]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[4]])
        for row in rows
    )


def _size(entry: CatalogEntry) -> str:
    if entry.size_gb is None:
        return "?"
    return f"{entry.size_gb:.1f} GB" if entry.size_gb >= 1 else f"{entry.size_gb * 1000:.0f} MB"


def _source(entry: CatalogEntry) -> str:
    return f"{entry.repo}/{entry.path}"  # also a valid --hf entry, for that exact file
