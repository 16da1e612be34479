"""How custom node packs are named — registry ids, registry versions, git commits, the folder a
clone gets — shared by the stage that parses entries (spec) and the one that resolves them
(resolve), so neither imports the other."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Registry ids as the frontend validates `cnr_id` (PROTOCOLS.md, Custom nodes §3).
REGISTRY_ID = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$")
# The registry's /install accepts only X.Y.Z.
SEMVER = re.compile(r"^\d+\.\d+\.\d+$")
COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
# One part of owner/repo, and a clone's folder: never hidden, never `..`, no separators.
REPO_PART = re.compile(r"^(?!\.)[A-Za-z0-9._-]{1,100}$")


def clone_folder(url: str) -> str | None:
    """The folder a clone of `url` gets (its last path part, without `.git`), or None when the
    URL is no repository URL or that name would be unsafe as a folder."""
    parts = urlsplit(url)
    name = parts.path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    if not parts.hostname or not REPO_PART.match(name) or parts.query or parts.fragment:
        return None
    return name
