"""Split a user's model list into entries and peel off each entry's `:folder` override."""

from __future__ import annotations

import re

# Entries are separated by commas, whitespace or newlines. A blank piece between two commas is
# reported (a name may be missing); leading/trailing separators are harmless and ignored.
_COMMA_OR_NEWLINE = re.compile(r"[,\n]")

# `:folder` at the end of an entry. A folder starts with a letter, so a URL's port
# (`http://host:8080/...`) and its scheme (`https://...`) are never taken for one.
_FOLDER_SUFFIX = re.compile(r":([A-Za-z_][A-Za-z0-9_\-]*(?:/[A-Za-z_][A-Za-z0-9_\-]*)*)$")


def split_entries(text: str) -> list[str]:
    """Entries in order; "" marks a blank entry between two commas."""
    pieces = _COMMA_OR_NEWLINE.split(text)
    while pieces and not pieces[0].strip():
        pieces.pop(0)
    while pieces and not pieces[-1].strip():
        pieces.pop()
    entries: list[str] = []
    for piece in pieces:
        words = piece.split()
        entries.extend(words if words else [""])
    return entries


def split_folder(entry: str) -> tuple[str, str | None]:
    """`"128713:loras"` → `("128713", "loras")`; no override → `(entry, None)`."""
    match = _FOLDER_SUFFIX.search(entry)
    if match is None:
        return entry, None
    return entry[: match.start()], match.group(1)
