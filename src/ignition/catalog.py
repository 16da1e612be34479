"""Ignition's catalog of short names (`flux1-dev`, `clip_l` …): data in catalog.yaml, read here."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources

import yaml

_CATALOG_VERSION = 1
_FIELDS = ("repo", "path", "folder", "description")


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    repo: str
    path: str
    folder: str
    description: str
    revision: str = "main"
    size_gb: float | None = None  # approximate, for people choosing; never used to verify

    @property
    def url(self) -> str:
        """The public page a user can open to read the licence (always huggingface.co)."""
        return f"https://huggingface.co/{self.repo}/blob/{self.revision}/{self.path}"


@cache
def load_catalog() -> dict[str, CatalogEntry]:
    """Short name (lower case) → entry, in the file's order."""
    text = resources.files("ignition").joinpath("catalog.yaml").read_text("utf-8")
    return parse_catalog(text)


def parse_catalog(text: str) -> dict[str, CatalogEntry]:
    data = yaml.safe_load(text)
    if not isinstance(data, dict) or data.get("version") != _CATALOG_VERSION:
        raise ValueError(f"catalog must be a mapping with version: {_CATALOG_VERSION}")
    entries: dict[str, CatalogEntry] = {}
    for name, fields in (data.get("models") or {}).items():
        missing = [f for f in _FIELDS if not isinstance(fields.get(f), str) or not fields[f]]
        if missing:
            raise ValueError(f"catalog entry {name!r} lacks {', '.join(missing)}")
        entries[str(name).lower()] = CatalogEntry(
            name=str(name),
            repo=fields["repo"],
            path=fields["path"],
            folder=fields["folder"],
            description=fields["description"],
            revision=str(fields.get("revision", "main")),
            size_gb=float(fields["size_gb"]) if "size_gb" in fields else None,
        )
    return entries


def lookup(name: str) -> CatalogEntry | None:
    return load_catalog().get(name.strip().lower())
