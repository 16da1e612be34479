"""Put verified bytes into a model folder atomically, and recognise files already in place.

ComfyUI lists every file inside its model folders (recursively), so nothing unverified may ever
sit there. Staging lives in `<models>/.ignition/`: on the same filesystem as the folders (the
final move is an atomic rename) but not inside any folder ComfyUI scans.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from ignition.errors import PlaceError
from ignition.records import FetchedFile, PlacedFile

_STATE_DIR = ".ignition"
_HASH_CHUNK = 4 * 1024 * 1024
_LOCK_POLL_S = 0.2


def state_dir(models_dir: Path) -> Path:
    return models_dir / _STATE_DIR


def staging_path(models_dir: Path, identity: str) -> Path:
    """Where a file's bytes arrive: named after its identity, so a re-run finds its partial."""
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    return state_dir(models_dir) / "staging" / f"{digest}.part"


@contextlib.asynccontextmanager
async def exclusive(models_dir: Path, identity: str) -> AsyncIterator[None]:
    """One writer per staging file across processes (the pod's own run and a manual
    `ignition download`): the second waits, then usually finds the file already in place.

    Lock files live apart from staging and are never deleted: unlinking a lock someone waits
    on would hand two processes "the" lock.
    """
    lock = state_dir(models_dir) / "locks" / f"{staging_path(models_dir, identity).stem}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with lock.open("a") as handle:
        while True:  # polled, not blocking in a thread, so a cancelled run lets go at once
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(_LOCK_POLL_S)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def destination(models_dir: Path, folder: str, filename: str) -> Path:
    path = models_dir / folder / filename
    root = models_dir.resolve()
    if not path.resolve().is_relative_to(root) or path.resolve() == root:
        raise PlaceError(f"{folder}/{filename} would land outside {models_dir}")
    return path


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class VerifiedFiles:
    """sha256 of files already checked, keyed by path and valid while size and mtime hold.

    Re-runs (every pod start) would otherwise re-hash tens of GB just to learn nothing changed.
    """

    def __init__(self, models_dir: Path) -> None:
        self._path = state_dir(models_dir) / "verified.json"
        try:
            loaded = json.loads(self._path.read_text("utf-8"))
            self._entries: dict[str, dict[str, object]] = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            self._entries = {}

    def sha256(self, path: Path) -> str:
        """The file's sha256, from the record when the file is unchanged, else by reading it."""
        stat = path.stat()
        entry = self._entries.get(str(path))
        if (
            entry
            and entry.get("size") == stat.st_size
            and entry.get("mtime_ns") == stat.st_mtime_ns
        ):
            return str(entry["sha256"])
        digest = sha256_file(path)
        self.record(path, digest)
        return digest

    def record(self, path: Path, sha256: str) -> None:
        stat = path.stat()
        self._entries[str(path)] = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "sha256": sha256,
        }

    def save(self) -> None:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self._entries, indent=1), "utf-8")
        temporary.replace(self._path)


def is_in_place(
    path: Path, expected_size: int | None, expected_sha256: str | None, verified: VerifiedFiles
) -> bool:
    """True when `path` exists and matches what the source promises (size, then sha256)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return False
    if not path.is_file() or (expected_size is not None and size != expected_size):
        return False
    return expected_sha256 is None or verified.sha256(path) == expected_sha256


def install(fetched: FetchedFile, target: Path) -> PlacedFile:
    """Move verified bytes into place: fsync the data, rename, fsync the folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _fsync(fetched.path)
    try:
        fetched.path.replace(target)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise PlaceError(f"cannot move {target.name} into {target.parent}: {error}") from error
        _replace_across_filesystems(fetched.path, target)
    _fsync_directory(target.parent)
    return PlacedFile(target, fetched.size_bytes, fetched.sha256, fetched=True)


def _replace_across_filesystems(source: Path, target: Path) -> None:
    # A model folder symlinked to another volume: copy beside the target under a name without a
    # weight extension (ComfyUI filters by extension, so it never lists it), then rename.
    temporary = target.with_name(f".{target.name}.ignition-tmp")
    try:
        shutil.copyfile(source, temporary)
        _fsync(temporary)
        temporary.replace(target)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise PlaceError(f"cannot move {target.name} into {target.parent}: {error}") from error
    source.unlink()


def _fsync(path: Path) -> None:
    with path.open("rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
