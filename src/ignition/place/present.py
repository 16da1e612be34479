"""Is a requested file already in place under a models root? Cheap answer first, exact second.

1. `trusted_in_place`: the manifest has a record for the file and its size and mtime still match
   (one stat, no read) — every warm start takes this path for every file.
2. `verified_in_place`: otherwise, if a file of the right size sits there, hash it; if it holds
   the promised bytes, record it (so the next start trusts it) and keep it.
Anything else is fetched again. The pipeline calls (2) only while holding the file's lock
(`file_lock`), so it never hashes a file another process is still moving into place.
`recheck_all` re-hashes everything a manifest records, on demand (`ignition verify`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ignition.place.install import sha256_file
from ignition.place.lock import FileLock
from ignition.place.manifest import Manifest, manifest_dir


def file_lock(root: Path, relative: str, *, stale_after_s: float) -> FileLock:
    """The lock that elects one fetcher per destination among every process sharing `root`."""
    digest = hashlib.sha256(relative.encode()).hexdigest()[:32]
    return FileLock(manifest_dir(root) / "locks" / f"{digest}.lock", stale_after_s=stale_after_s)


def trusted_in_place(
    manifest: Manifest, relative: str, expected_size: int | None, expected_sha256: str | None
) -> bool:
    record = manifest.trusted(relative, sha256=expected_sha256)
    return record is not None and expected_size in (None, record.size_bytes)


def verified_in_place(
    manifest: Manifest,
    relative: str,
    *,
    identity: str,
    expected_size: int | None,
    expected_sha256: str | None,
    source: str = "",
) -> bool:
    """Trusted, or present with the promised size and (when published) sha256 — then recorded
    (with `source`, where such bytes come from)."""
    if trusted_in_place(manifest, relative, expected_size, expected_sha256):
        return True
    path = manifest.root / relative
    try:
        if not path.is_file() or expected_size not in (None, path.stat().st_size):
            return False
    except OSError:
        return False
    digest = sha256_file(path)
    if expected_sha256 is not None and digest != expected_sha256:
        manifest.forget(relative)
        return False
    manifest.record(relative, identity=identity, sha256=digest, source=source)
    return True


@dataclass(frozen=True)
class Rechecked:
    """One manifest record checked against the bytes on disk."""

    relative: str
    status: Literal["ok", "missing", "changed"]
    detail: str = ""


def recheck_all(
    manifest: Manifest, on_file: Callable[[str, int], None] | None = None
) -> list[Rechecked]:
    """Re-hash every recorded file (`ignition verify`); `on_file(relative, size_bytes)` is
    called before each. A missing or changed file loses its record, so the next `ignition
    download` fetches it again; a file whose bytes still match but whose mtime moved (touched,
    copied with new times) is recorded afresh."""
    results: list[Rechecked] = []
    for relative, record in manifest.items():
        if on_file is not None:
            on_file(relative, record.size_bytes)
        path = manifest.root / relative
        try:
            size = path.stat().st_size
            digest = sha256_file(path) if size == record.size_bytes else None
        except OSError as error:
            manifest.forget(relative)
            results.append(Rechecked(relative, "missing", error.strerror or str(error)))
            continue
        if digest != record.sha256:
            manifest.forget(relative)
            found = f"sha256 {digest[:16]}…" if digest else f"{size} bytes"
            expected = f"sha256 {record.sha256[:16]}…" if digest else f"{record.size_bytes}"
            results.append(Rechecked(relative, "changed", f"{found}, recorded {expected}"))
            continue
        if manifest.trusted(relative) is None:
            manifest.record(relative, identity=record.identity, sha256=digest)
        results.append(Rechecked(relative, "ok"))
    return results
