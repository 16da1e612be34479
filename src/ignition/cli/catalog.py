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
        description="List Ignition's catalog of short names (name, folder, source, description).",
    )
    parser.add_argument("--markdown", action="store_true", help="print README's Markdown table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # Imported here: loading the resolve package pulls aiohttp, which the HEALTHCHECK's
    # `ignition status` (it builds the same parser) must not pay for.
    from ignition.catalog import load_catalog

    entries = list(load_catalog().values())
    print(markdown_table(entries) if args.markdown else plain_table(entries))
    return 0


def markdown_table(entries: list[CatalogEntry]) -> str:
    lines = ["| Name | Folder | Hugging Face file | Description |", "|---|---|---|---|"]
    lines += [
        f"| `{e.name}` | {e.folder} | `{e.repo}/{e.path}` | {e.description} |" for e in entries
    ]
    return "\n".join(lines)


def plain_table(entries: list[CatalogEntry]) -> str:
    header = ("NAME", "FOLDER", "DESCRIPTION")
    rows = [header, *((e.name, e.folder, e.description) for e in entries)]
    name_width = max(len(r[0]) for r in rows)
    folder_width = max(len(r[1]) for r in rows)
    return "\n".join(f"{r[0].ljust(name_width)}  {r[1].ljust(folder_width)}  {r[2]}" for r in rows)
