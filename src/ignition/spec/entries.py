"""Split a user's model list into entries and peel off each entry's `:folder` override."""

from __future__ import annotations

import re

# Entries are separated by commas, whitespace or newlines, and any run of separators counts as
# one: `a,,b` is `a,b` just as `a  b` and a trailing comma are (one rule, no surprises).
_SEPARATORS = re.compile(r"[,\s]+")

# `:folder` at the end of an entry. A folder starts with a letter, so a URL's port
# (`http://host:8080/...`) and its scheme (`https://...`) are never taken for one.
_FOLDER_SUFFIX = re.compile(r":([A-Za-z_][A-Za-z0-9_\-]*(?:/[A-Za-z_][A-Za-z0-9_\-]*)*)$")


def split_entries(text: str) -> list[str]:
    """The non-blank entries, in order."""
    return [piece for piece in _SEPARATORS.split(text) if piece]


def split_folder(entry: str) -> tuple[str, str | None]:
    """`"128713:loras"` → `("128713", "loras")`; no override → `(entry, None)`."""
    match = _FOLDER_SUFFIX.search(entry)
    if match is None:
        return entry, None
    return entry[: match.start()], match.group(1)
