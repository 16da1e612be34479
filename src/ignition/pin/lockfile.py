"""ignition.lock: the exact bytes a manifest provisioned, as records and as deterministic JSON.

Not to be confused with place/lock.py (a file lock that elects one fetcher among processes).

The document, keys sorted, lists in a fixed order, no timestamps, so the same inputs always give
the same bytes and a lock diffs cleanly in review:

    {"version": 1,
     "manifest": {"civitai": [...], "huggingface": [...], "nodes": [...], "python": [...],
                  "workflows": {"<entry>": "<sha256 of its text>"}},
     "models": [{"name", "source", "url", "folder", "filename", "size", "sha256"}, ...]}

`manifest` is what the lock was made from (entries sorted), so `ignition lock --check` can tell
offline whether the manifest still says the same; `models` is what a locked start provisions.
URLs are the sources' own download endpoints, redacted: no token, no signature, ever.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from ignition import bounded_json
from ignition.errors import LockfileError
from ignition.spec.manifest import PodManifest

LOCK_VERSION = 1
LOCK_NAME = "ignition.lock"
_LIST_KEYS = ("civitai", "huggingface", "nodes", "python")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class LockedModel:
    """One model file: where it comes from, where it goes, and the only bytes it may be."""

    name: str  # what the user recognises (catalog name, repo/path, civitai:<version>)
    source: str  # "civitai" | "huggingface"
    url: str  # the source's download endpoint, redacted
    folder: str
    filename: str
    size: int
    sha256: str

    @property
    def relative(self) -> str:
        return f"{self.folder}/{self.filename}"


@dataclass(frozen=True)
class LockInputs:
    """What a lock was made from: the manifest's lists (sorted) and each workflow's hash."""

    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)
    workflows: dict[str, str] = field(default_factory=dict)  # entry as written → sha256

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {key: list(self.lists.get(key, ())) for key in _LIST_KEYS}
        document["workflows"] = dict(sorted(self.workflows.items()))
        return document


def inputs_of(manifest: PodManifest, workflow_sha256: dict[str, str]) -> LockInputs:
    """The manifest as a lock records it; `workflow_sha256` maps each workflow entry to the
    sha256 of its text (one that could not be read has none, and matches no lock)."""
    lists = manifest.lists()
    return LockInputs(
        lists={key: tuple(sorted(lists[key])) for key in _LIST_KEYS},
        workflows={entry: workflow_sha256.get(entry, "unreadable") for entry in manifest.workflows},
    )


@dataclass(frozen=True)
class Lockfile:
    inputs: LockInputs
    models: tuple[LockedModel, ...]

    def dumps(self) -> str:
        """The lock's bytes: the same lock always serialises to the same text."""
        models = sorted(self.models, key=lambda m: (m.folder, m.filename, m.url))
        document = {
            "version": LOCK_VERSION,
            "manifest": self.inputs.to_json(),
            "models": [asdict(model) for model in models],
        }
        return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def differences(locked: LockInputs, current: LockInputs) -> list[str]:
    """What changed in the manifest since the lock was made, one line each; [] when nothing."""
    lines: list[str] = []
    for key in _LIST_KEYS:
        before, after = set(locked.lists.get(key, ())), set(current.lists.get(key, ()))
        lines += [f"{key}: {entry!r} added, not locked" for entry in sorted(after - before)]
        lines += [f"{key}: {entry!r} removed, still locked" for entry in sorted(before - after)]
    for entry in sorted(set(locked.workflows) | set(current.workflows)):
        was, now = locked.workflows.get(entry), current.workflows.get(entry)
        if was == now:
            continue
        if was is None:
            lines.append(f"workflows: {entry!r} added, not locked")
        elif now is None:
            lines.append(f"workflows: {entry!r} removed, still locked")
        else:
            lines.append(f"workflows: {entry!r} changed since locked")
    return lines


def parse_lock(text: str, *, origin: str) -> Lockfile:
    """A lock's text → records; anything malformed is a LockfileError naming what."""
    try:
        document = bounded_json.loads(text, what=origin)
    except bounded_json.UntrustedJsonError as error:
        raise LockfileError(str(error)) from None
    if not isinstance(document, dict):
        raise LockfileError(f"{origin}: not a lock (the top level is not an object)")
    if document.get("version") != LOCK_VERSION:
        raise LockfileError(
            f"{origin}: lock version {document.get('version')!r} is not one this Ignition "
            f"reads (it reads version {LOCK_VERSION})",
            hint="upgrade Ignition, or write the lock again with `ignition lock`",
        )
    try:
        inputs = _inputs(document["manifest"])
        models = tuple(_model(entry) for entry in document["models"])
    except (KeyError, TypeError, ValueError) as error:
        raise LockfileError(f"{origin}: malformed lock ({error!r})") from None
    return Lockfile(inputs, models)


def _inputs(value: Any) -> LockInputs:
    lists = {key: tuple(str(entry) for entry in value.get(key, [])) for key in _LIST_KEYS}
    workflows = {str(entry): _sha256(sha) for entry, sha in dict(value["workflows"]).items()}
    return LockInputs(lists, workflows)


def _model(value: Any) -> LockedModel:
    size = value["size"]
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"size {size!r}")
    return LockedModel(
        name=str(value["name"]),
        source=str(value["source"]),
        url=str(value["url"]),
        folder=str(value["folder"]),
        filename=str(value["filename"]),
        size=size,
        sha256=_sha256(value["sha256"]),
    )


def _sha256(value: Any) -> str:
    text = str(value)
    if not _SHA256.match(text):
        raise ValueError(f"sha256 {text!r}")
    return text
