"""Put verified bytes into a model folder atomically (present.py recognises files already there).

ComfyUI lists every file inside its model folders (recursively), so nothing unverified may ever
sit there. Staging lives in `<models>/.ignition/`: on the same filesystem as the folders (the
final move is an atomic rename) but not inside any folder ComfyUI scans.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
from pathlib import Path

from ignition.atomic import move_into_place
from ignition.errors import PlaceError
from ignition.place.manifest import manifest_dir
from ignition.records import FetchedFile, PlacedFile

_HASH_CHUNK = 4 * 1024 * 1024


def state_dir(models_dir: Path) -> Path:
    return manifest_dir(models_dir)


def prepare_state_dir(models_dir: Path, *, create: bool = True) -> None:
    """Create `<models>/.ignition/{staging,locks}` (with `create`), refusing any of them that is
    a link or not a folder: Ignition writes model bytes, locks and its manifest there, and on a
    shared volume a neighbour could point a link anywhere."""
    if create:
        models_dir.mkdir(parents=True, exist_ok=True)
    top = state_dir(models_dir)
    for folder in (top, top / "staging", top / "locks"):
        if create:
            with contextlib.suppress(FileExistsError):
                folder.mkdir(mode=0o755)
        try:
            mode = folder.lstat().st_mode
        except FileNotFoundError:
            return  # a dry run before the first real one: nothing there yet
        if not stat.S_ISDIR(mode):
            raise PlaceError(
                f"{folder} is a link or not a folder; Ignition will not write through it",
                hint=f"remove {folder} (Ignition recreates it) and run again",
            )


def staging_path(models_dir: Path, identity: str, relative: str) -> Path:
    """Where a file's verified bytes land for the destination `relative`: named after both, so
    a re-run finds its partial (the engine keeps `<this>.part` and `<this>.part.json` beside
    it) and two destinations wanting the same bytes never share one."""
    digest = hashlib.sha256(f"{identity}\0{relative}".encode()).hexdigest()[:32]
    return state_dir(models_dir) / "staging" / digest


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


def install(fetched: FetchedFile, target: Path) -> PlacedFile:
    """Move verified bytes into place: fsync the data, rename, fsync the folder. Only a plain
    file is moved: a link in staging (planted, or followed while writing) never lands in a
    model folder."""
    if not stat.S_ISREG(fetched.path.lstat().st_mode):
        raise PlaceError(
            f"refusing to install {target.name}: its staged copy {fetched.path} is not a plain "
            "file (a link?)",
            hint="remove it and run again; check who else writes to the models volume",
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    _fsync(fetched.path)
    try:
        move_into_place(fetched.path, target)
    except OSError as error:
        if error.errno != errno.EXDEV:
            raise PlaceError(f"cannot move {target.name} into {target.parent}: {error}") from error
        _replace_across_filesystems(fetched.path, target)
    return PlacedFile(target, fetched.size_bytes, fetched.sha256, fetched=True)


def _replace_across_filesystems(source: Path, target: Path) -> None:
    # A model folder symlinked to another volume: copy beside the target under a name without a
    # weight extension (ComfyUI filters by extension, so it never lists it), then rename.
    temporary = target.with_name(f".{target.name}.ignition-tmp")
    try:
        shutil.copyfile(source, temporary)
        _fsync(temporary)
        move_into_place(temporary, target)
    except OSError as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise PlaceError(f"cannot move {target.name} into {target.parent}: {error}") from error
    source.unlink()


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
