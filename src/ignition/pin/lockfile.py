"""ignition.lock: the exact bytes a manifest provisioned, as records and as deterministic JSON.

Not to be confused with place/lock.py (a file lock that elects one fetcher among processes).

The document, keys sorted, lists in a fixed order, no timestamps, so the same inputs always give
the same bytes and a lock diffs cleanly in review:

    {"version": 1,
     "manifest": {"civitai": [...], "huggingface": [...], "nodes": [...], "python": [...],
                  "workflows": {"<entry>": "<sha256 of its text>"}},
     "models": [{"name", "source", "url", "folder", "filename", "size", "sha256"}, ...],
     "packs": [{"name", "source", "ref", "folder", "version", "commit", "url",
                "archive_sha256"}, ...],
     "python": {"constraints": {"torch": "2.5.0", ...},
                "packages": [{"name", "version", "hashes": ["sha256:…"]}, ...]}}

`manifest` is what the lock was made from (entries sorted), so `ignition lock --check` can tell
offline whether the manifest still says the same; `models`, `packs` and `python` are what a
locked start provisions. A registry pack is pinned by version and the sha256 of its archive, a
git pack by its commit. `python` is every package the manifest's `python` entries and the packs'
requirements resolve to beside the installed torch (`constraints`: what they were resolved
against, never installed from the lock), each with the hashes `uv pip compile --generate-hashes`
gave. A lock written before packs were locked has neither key and reads as having none.
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
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")
_PACKAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+!_-]*$")


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
class LockedPack:
    """One node pack: a registry version with its archive's sha256, or a git commit."""

    name: str  # the entry as written (or the workflow metadata it came from)
    source: str  # "registry" | "git"
    ref: str  # NodeRef.name: the registry id or the clone URL
    folder: str  # under custom_nodes
    version: str | None  # registry version (for git: the tag or branch asked for, if any)
    commit: str | None  # git commit, 40 hex
    url: str  # the archive's download URL or the clone URL, redacted
    archive_sha256: str | None  # registry packs only


@dataclass(frozen=True)
class LockedPackage:
    """One Python package as uv resolved it: exact version and the hashes it may have."""

    name: str
    version: str
    hashes: tuple[str, ...]

    def requirement(self) -> str:
        """The line of a `--require-hashes` requirements file."""
        return " ".join([f"{self.name}=={self.version}", *(f"--hash={h}" for h in self.hashes)])


@dataclass(frozen=True)
class LockedPython:
    constraints: dict[str, str] = field(default_factory=dict)  # torch & co as resolved against
    packages: tuple[LockedPackage, ...] = ()

    def to_json(self) -> dict[str, Any]:
        packages = sorted(self.packages, key=lambda p: p.name.lower())
        return {
            "constraints": dict(sorted(self.constraints.items())),
            "packages": [
                {"name": p.name, "version": p.version, "hashes": sorted(p.hashes)} for p in packages
            ],
        }


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
    packs: tuple[LockedPack, ...] = ()
    python: LockedPython = field(default_factory=LockedPython)

    def dumps(self) -> str:
        """The lock's bytes: the same lock always serialises to the same text."""
        models = sorted(self.models, key=lambda m: (m.folder, m.filename, m.url))
        packs = sorted(self.packs, key=lambda p: (p.folder, p.ref))
        document = {
            "version": LOCK_VERSION,
            "manifest": self.inputs.to_json(),
            "models": [asdict(model) for model in models],
            "packs": [asdict(pack) for pack in packs],
            "python": self.python.to_json(),
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
        packs = tuple(_pack(entry) for entry in document.get("packs", []))
        python = _python(document.get("python", {}))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise LockfileError(f"{origin}: malformed lock ({error!r})") from None
    return Lockfile(inputs, models, packs, python)


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


def _pack(value: Any) -> LockedPack:
    source = str(value["source"])
    if source not in {"registry", "git"}:
        raise ValueError(f"pack source {source!r}")
    commit, archive = value.get("commit"), value.get("archive_sha256")
    if commit is not None and not _COMMIT.match(str(commit)):
        raise ValueError(f"commit {commit!r}")
    if (source == "git" and commit is None) or (source == "registry" and archive is None):
        raise ValueError(f"{source} pack {value.get('name')!r} without its pin")
    version = value.get("version")
    return LockedPack(
        name=str(value["name"]),
        source=source,
        ref=str(value["ref"]),
        folder=str(value["folder"]),
        version=None if version is None else str(version),
        commit=None if commit is None else str(commit),
        url=str(value["url"]),
        archive_sha256=None if archive is None else _sha256(archive),
    )


def _python(value: Any) -> LockedPython:
    constraints = {str(k): str(v) for k, v in dict(value.get("constraints", {})).items()}
    packages = []
    for entry in value.get("packages", []):
        name, version = str(entry["name"]), str(entry["version"])
        hashes = tuple(str(h) for h in entry["hashes"])
        # Written into a requirements file: nothing but a name, a version and sha256 hashes.
        if not _PACKAGE.match(name) or not _VERSION.match(version):
            raise ValueError(f"package {name!r} {version!r}")
        if not hashes or not all(_HASH.match(h) for h in hashes):
            raise ValueError(f"hashes of {name!r}")
        packages.append(LockedPackage(name, version, hashes))
    return LockedPython(constraints, tuple(packages))


def _sha256(value: Any) -> str:
    text = str(value)
    if not _SHA256.match(text):
        raise ValueError(f"sha256 {text!r}")
    return text
