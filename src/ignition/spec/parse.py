"""Turn the user's two model lists into refs, collecting every bad entry instead of stopping."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from ignition.comfyui_folders import normalise_folder
from ignition.errors import DuplicateEntryError, SpecError
from ignition.records import ModelRef, SourceName
from ignition.spec.civitai import parse_civitai_entry
from ignition.spec.entries import split_entries, split_folder
from ignition.spec.huggingface import parse_huggingface_entry

_PASTED_HF_URL = re.compile(r"^(https?://)?(www\.)?(huggingface\.co|hf\.co)/", re.IGNORECASE)
_PASTED_CIVITAI_URL = re.compile(r"^(https?://)?(www\.)?civitai\.(com|green)/", re.IGNORECASE)


class ParsedSpecs(NamedTuple):
    refs: list[ModelRef]
    # Every bad entry, in input order; good entries are in `refs` regardless.
    errors: list[SpecError]


def parse_specs(civitai: str, huggingface: str) -> ParsedSpecs:
    """Parse CIVITAI_MODELS-style and HUGGINGFACE_MODELS-style lists.

    Bad entries (non-numeric ids, unknown short names, duplicates) are all
    reported together; one bad entry never hides the good ones.
    """
    refs: list[ModelRef] = []
    errors: list[SpecError] = []
    seen: dict[tuple[str, ...], str] = {}
    sources: tuple[tuple[SourceName, str, Callable[[str, str | None], ModelRef]], ...] = (
        ("civitai", civitai, parse_civitai_entry),
        ("huggingface", huggingface, parse_huggingface_entry),
    )
    for source, text, parse_entry in sources:
        for entry in split_entries(text):
            error = _parse_one(entry, parse_entry, seen, refs)
            if error is not None:
                error.source, error.entry = source, entry
                errors.append(error)
    return ParsedSpecs(refs, errors)


def _parse_one(
    entry: str,
    parse_entry: Callable[[str, str | None], ModelRef],
    seen: dict[tuple[str, ...], str],
    refs: list[ModelRef],
) -> SpecError | None:
    body, folder = split_folder(entry)
    # A URL pasted into the other list still says where it is from: follow the URL.
    if _PASTED_HF_URL.match(body):
        parse_entry = parse_huggingface_entry
    elif _PASTED_CIVITAI_URL.match(body):
        parse_entry = parse_civitai_entry
    try:
        ref = parse_entry(body, None if folder is None else normalise_folder(folder))
    except SpecError as error:
        return error
    first = seen.get(ref.key)
    if first is not None:
        return DuplicateEntryError(f"{entry!r} names the same file as {first!r}; fetched once")
    seen[ref.key] = entry
    refs.append(ref)
    return None
