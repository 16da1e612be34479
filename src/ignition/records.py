"""Frozen records passed between the pipeline's stages: spec → resolve → fetch → place.

Stages share only these; each stage's own types stay private to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


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
