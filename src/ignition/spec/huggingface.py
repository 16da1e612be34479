"""Hugging Face entries: catalog short names, repo ids, repo file paths and pasted URLs."""

from __future__ import annotations

import difflib
import re
from urllib.parse import unquote, urlsplit

from ignition.catalog import load_catalog, lookup
from ignition.errors import SpecError
from ignition.records import HuggingFaceRef

# Hugging Face's own rule for repo name parts: letters, digits, '-', '_', '.'; no '--' or '..'.
_NAME_PART = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$")
_FORMS_HINT = (
    "use a short name from `ignition catalog`, owner/repo, owner/repo/path/to/file.safetensors "
    "or a https://huggingface.co/<repo>/resolve/<revision>/<path> URL"
)


def parse_huggingface_entry(entry: str, folder: str | None) -> HuggingFaceRef:
    """One entry → ref. Accepted forms (`@revision` after the repo is optional):

    `clip_l` (catalog), `owner/repo[@rev]` (its root-level weight files),
    `owner/repo[@rev]/path/to/file`, `https://huggingface.co/owner/repo/resolve/<rev>/<path>`
    (also `/blob/`, `/tree/<rev>` and the bare repo page).
    """
    if "://" in entry or entry.startswith(("huggingface.co/", "hf.co/")):
        return _from_url(entry, folder)
    if "/" not in entry:
        found = lookup(entry)
        if found is None:
            close = difflib.get_close_matches(entry.lower(), load_catalog(), n=3, cutoff=0.6)
            guess = f" (did you mean {', '.join(close)}?)" if close else ""
            raise SpecError(f"unknown short name {entry!r}{guess}", hint=_FORMS_HINT)
        return HuggingFaceRef(
            text=entry,
            repo=found.repo,
            path=found.path,
            revision=found.revision,
            folder=folder,
            catalog_name=found.name,
            catalog_folder=found.folder,
        )
    owner, rest = entry.split("/", 1)
    name_and_rev, _, path = rest.partition("/")
    name, _, revision = name_and_rev.partition("@")
    return _ref(entry, owner, name, revision or "main", path or None, folder)


def _from_url(entry: str, folder: str | None) -> HuggingFaceRef:
    url = entry if "://" in entry else f"https://{entry}"
    segments = [unquote(s) for s in urlsplit(url).path.split("/") if s]
    if segments[:1] in (["datasets"], ["spaces"]):
        raise SpecError(f"{entry!r} is a dataset or Space, not a model repo", hint=_FORMS_HINT)
    if len(segments) < 2:
        raise SpecError(f"URL {entry!r} does not name a repo", hint=_FORMS_HINT)
    owner, name, rest = segments[0], segments[1], segments[2:]
    if not rest:
        return _ref(entry, owner, name, "main", None, folder)
    kind = rest[0]
    if kind in {"resolve", "blob"} and len(rest) >= 3:
        return _ref(entry, owner, name, rest[1], "/".join(rest[2:]), folder)
    if kind == "tree" and len(rest) == 2:
        return _ref(entry, owner, name, rest[1], None, folder)
    raise SpecError(f"URL {entry!r} does not point at a file or a repo", hint=_FORMS_HINT)


def _ref(
    entry: str, owner: str, name: str, revision: str, path: str | None, folder: str | None
) -> HuggingFaceRef:
    for part in (owner, name):
        if not _NAME_PART.match(part) or "--" in part or ".." in part:
            raise SpecError(f"{entry!r} has an invalid repo id '{owner}/{name}'", hint=_FORMS_HINT)
    if path is not None and any(p in {"", ".", ".."} for p in path.split("/")):
        raise SpecError(f"{entry!r} has an invalid file path {path!r}", hint=_FORMS_HINT)
    if not revision or ".." in revision:
        raise SpecError(f"{entry!r} has an invalid revision {revision!r}", hint=_FORMS_HINT)
    return HuggingFaceRef(
        text=entry, repo=f"{owner}/{name}", path=path, revision=revision, folder=folder
    )
