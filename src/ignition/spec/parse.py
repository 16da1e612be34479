"""Turn the user's two model lists into refs, collecting every bad entry instead of stopping."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ignition.errors import DuplicateEntryError, SpecError
from ignition.records import ModelRef
from ignition.spec.civitai import parse_civitai_entry
from ignition.spec.entries import split_entries, split_folder
from ignition.spec.huggingface import parse_huggingface_entry


class ParsedSpecs(NamedTuple):
    refs: list[ModelRef]
    # Every bad entry, in input order; good entries are in `refs` regardless.
    errors: list[SpecError]


def parse_specs(civitai: str, huggingface: str) -> ParsedSpecs:
    """Parse CIVITAI_MODELS-style and HUGGINGFACE_MODELS-style lists.

    Bad entries (non-numeric ids, unknown short names, blank entries, duplicates) are all
    reported together; one bad entry never hides the good ones.
    """
    refs: list[ModelRef] = []
    errors: list[SpecError] = []
    seen: dict[tuple[str, ...], str] = {}
    sources: tuple[tuple[str, str, Callable[[str, str | None], ModelRef]], ...] = (
        ("CivitAI", civitai, parse_civitai_entry),
        ("Hugging Face", huggingface, parse_huggingface_entry),
    )
    for label, text, parse_entry in sources:
        for entry in split_entries(text):
            if not entry:
                errors.append(
                    SpecError(
                        f"{label} list has an empty entry (two commas in a row)",
                        hint="remove the extra comma or add the missing model",
                    )
                )
                continue
            body, folder = split_folder(entry)
            try:
                ref = parse_entry(body, folder)
            except SpecError as error:
                errors.append(error)
                continue
            first = seen.get(ref.key)
            if first is not None:
                errors.append(
                    DuplicateEntryError(f"{entry!r} names the same file as {first!r}; fetched once")
                )
                continue
            seen[ref.key] = entry
            refs.append(ref)
    return ParsedSpecs(refs, errors)
