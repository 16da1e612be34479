"""Frozen records passed between the pipeline's stages: spec → resolve → fetch → place.

Stages share only these; each stage's own types stay private to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

# The model services Ignition resolves against.
SourceName = Literal["civitai", "huggingface"]


@dataclass(frozen=True)
class FetchRequest:
    """What the fetch stage needs to turn a resolved file into verified bytes on disk."""

    # The first URL to GET: the source's own download endpoint (CivitAI /api/download/...,
    # HF /resolve/...). It usually redirects to a presigned storage/CDN URL on another host;
    # asking it again yields a fresh link when a presigned one expires mid-transfer.
    url: str
    # Verified bytes end here. Same filesystem as the model folder (so the final move is an
    # atomic rename) but never inside it (so ComfyUI never lists a partial file).
    staging_path: Path
    expected_size: int | None
    expected_sha256: str | None  # lowercase hex
    # What makes the source "the same file" across runs (sha256, else ETag + size): a partial
    # download is resumed only when this matches the identity it was started with.
    identity: str
    # Human-readable name for progress lines and error messages.
    label: str


@dataclass(frozen=True)
class FetchedFile:
    """Bytes on disk at `path` whose size and sha256 were computed while they arrived."""

    path: Path
    size_bytes: int
    sha256: str


# --- spec → resolve ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CivitaiRef:
    """A CivitAI entry: a model-version id, or a model id meaning "its newest version"."""

    text: str  # the entry as the user wrote it, for messages
    version_id: int | None
    model_id: int | None = None
    file_id: int | None = None  # an exact file of the version (`?fileId=` in a pasted URL)
    folder: str | None = None  # the user's `:folder` override, as written
    # Save under this name instead of the source's: a workflow's loader looks for exactly it.
    filename: str | None = None

    @property
    def key(self) -> tuple[str, ...]:
        """Two entries with the same key fetch the same thing: the second is a duplicate."""
        if self.version_id is not None:  # the model id in a pasted URL adds nothing
            return ("civitai", f"v{self.version_id}", str(self.file_id))
        return ("civitai", f"m{self.model_id}", str(self.file_id))


@dataclass(frozen=True)
class HuggingFaceRef:
    """A Hugging Face entry: one file in a repo, or (path None) the repo's root-level weights."""

    text: str
    repo: str  # owner/name
    path: str | None
    revision: str = "main"
    folder: str | None = None
    # The catalog short name this entry came from, when it did (its folder is the default).
    catalog_name: str | None = None
    catalog_folder: str | None = None
    # Save under this name instead of the path's basename (see CivitaiRef.filename).
    filename: str | None = None

    @property
    def key(self) -> tuple[str, ...]:
        return ("huggingface", self.repo.lower(), self.revision, self.path or "")


ModelRef = CivitaiRef | HuggingFaceRef


# --- resolve → fetch → place -------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedFile:
    """One file a source promised: where to ask for it, what it must hash to, where it goes."""

    ref: ModelRef
    source: SourceName
    name: str  # what the user recognises: the catalog name, repo/path or "civitai:<version>"
    url: str  # the source's own download endpoint (never a presigned link: those expire)
    filename: str  # sanitised basename
    folder: str  # ComfyUI model folder, relative to the models dir (e.g. "loras")
    expected_sha256: str | None  # lowercase hex
    expected_size: int | None  # exact bytes, when the source states them
    size_estimate: int | None  # approximate bytes for the disk preflight (CivitAI sizeKB)
    warnings: tuple[str, ...] = ()
    # From ignition.lock: only these bytes will do (pin/locked.py checks the source first).
    pinned: bool = False

    @property
    def planned_size(self) -> int:
        return self.expected_size or self.size_estimate or 0


@dataclass(frozen=True)
class PlacedFile:
    """A verified file at its final path; `fetched` is False when it was already in place."""

    path: Path
    size_bytes: int
    sha256: str | None
    fetched: bool


# --- custom node packs ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeRef:
    """A custom node pack to provision, as named by a list entry or a workflow.

    kind "registry": `name` is a Comfy Registry id, `version` an X.Y.Z version, a git commit
    (a workflow saved from a nightly install) or None for the latest.
    kind "git": `name` is the clone URL (GitHub's `owner/repo` already expanded), `version` a
    tag, branch or commit, or None for the default branch.
    """

    text: str  # the entry as written (or "<class> in <workflow>"), for messages and records
    kind: str  # "registry" | "git"
    name: str
    version: str | None = None
    # True when the pack was inferred from a node's class name through the registry, not named.
    guess: bool = False
    origin: str = ""  # "COMFYUI_NODES" or the workflow it came from

    @property
    def key(self) -> tuple[str, str]:
        """One pack per key: the same pack named twice is provisioned once."""
        return (self.kind, self.name.lower().removesuffix(".git"))

    @property
    def requested(self) -> str:
        """What was asked for, as the on-disk record stores it: a warm start compares this."""
        return f"{self.kind}:{self.name}@{self.version or ''}"


@dataclass(frozen=True)
class ResolvedPack:
    """A pack pinned to exact bytes: a registry version's archive or a git commit.

    `folder` is the directory under custom_nodes (the registry id, or the repo's name, as
    ComfyUI-Manager lays them out). For a registry pack `url` is the archive's download URL and
    `archive_sha256` is filled in once it is fetched (or given by a lock, then checked); for a
    git pack `url` is the clone URL and `commit` the full sha.
    """

    ref: NodeRef
    source: str  # "registry" | "git"
    pack_id: str  # registry id, or owner/repo for git
    folder: str
    version: str | None  # registry version (None for git packs at a bare commit)
    commit: str | None  # git commit (None for registry archives)
    url: str
    archive_sha256: str | None = None
    # The registry id of a git pack installed as a registry "nightly" (`.git/.cnr-id`).
    cnr_id: str | None = None
    warnings: tuple[str, ...] = ()
