"""Place node packs in `custom_nodes/` the way ComfyUI-Manager lays them out, atomically.

A pack is built in `custom_nodes/.ignition-staging.disabled/` (same filesystem; ComfyUI skips
any name ending in `.disabled`), then swapped into `custom_nodes/<folder>` in one rename. A
registry archive is unpacked entry by entry, refusing any entry that is absolute, climbs out
with `..`, or is a link (symbolic or hard) whose target leaves the pack; Manager's `.tracking`
(the archive's names, `\\n`-joined) is written beside it. Git packs are clones.

Each pack Ignition placed carries `.ignition-pack.json`: what was asked for, what was installed
(source, version, commit, archive sha256) and whether its Python requirements were installed
into which interpreter. A warm start reads only these records. A folder without one was put
there by someone else and is never touched.
"""

from __future__ import annotations

import json
import secrets
import shutil
import stat
import tarfile
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ignition.atomic import swap_dir, write_atomic
from ignition.errors import UnsafeArchiveError

RECORD_NAME = ".ignition-pack.json"
TRACKING_NAME = ".tracking"
STAGING_NAME = ".ignition-staging.disabled"
# A file, so neither ComfyUI (folders and .py files only) nor the Manager takes it for a pack.
LOCK_NAME = ".ignition-nodes.lock"


def custom_nodes_dir(comfyui_base: Path) -> Path:
    """ComfyUI's custom_nodes folder under its `--base-directory`."""
    return comfyui_base / "custom_nodes"


@dataclass(frozen=True)
class PackRecord:
    """What `.ignition-pack.json` says about an installed pack."""

    requested: str  # NodeRef.requested of the request it satisfied
    source: str
    pack_id: str
    version: str | None
    commit: str | None
    url: str
    archive_sha256: str | None
    # sha256 over requirements.txt and install.py as installed, and the interpreter they went
    # into; None until they are installed. A warm start compares both and runs nothing.
    requirements_fingerprint: str | None = None
    python: str | None = None
    # Node classes the registry mapped to this pack (API-format workflows), so a warm start
    # needs no lookup for them.
    classes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["classes"] = list(self.classes)
        return data


def read_record(pack_dir: Path) -> PackRecord | None:
    """The record of a pack Ignition installed, or None (absent, unreadable: not ours)."""
    try:
        data = json.loads((pack_dir / RECORD_NAME).read_text("utf-8"))
        data["classes"] = tuple(data.get("classes") or ())
        return PackRecord(**data)
    except (OSError, ValueError, TypeError):
        return None


def write_record(pack_dir: Path, record: PackRecord) -> None:
    write_atomic(pack_dir / RECORD_NAME, json.dumps(record.to_json(), indent=2) + "\n")


def staging_dir(custom_nodes: Path, folder: str) -> Path:
    """A fresh, empty-to-be path in staging for building `folder`."""
    root = custom_nodes / STAGING_NAME
    root.mkdir(parents=True, exist_ok=True)
    return root / f"{folder}.{secrets.token_hex(4)}"


def unpack_archive(archive: Path, target: Path) -> list[str]:
    """Unpack a zip (or tar) archive into the new folder `target`; the archive's names.

    Raises UnsafeArchiveError, before writing anything, for an entry that would land outside.
    """
    target.mkdir(parents=True)
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as bundle:
            names = bundle.namelist()
            for info in bundle.infolist():
                _check_name(info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    _check_link(info.filename, bundle.read(info).decode("utf-8", "replace"))
            # zipfile writes a link entry as a small file holding its target (as Manager's
            # extractall does), so nothing on disk ever points anywhere.
            bundle.extractall(target)  # noqa: S202 - every name checked above
    elif tarfile.is_tarfile(archive):
        with tarfile.open(archive) as bundle:
            members = bundle.getmembers()
            names = [member.name for member in members]
            for member in members:
                _check_name(member.name)
                if member.issym():
                    _check_link(member.name, member.linkname)
                elif member.islnk():
                    _check_name(member.linkname)
                elif not (member.isfile() or member.isdir()):
                    raise UnsafeArchiveError(f"archive entry {member.name!r} is a device or fifo")
            bundle.extractall(target, filter="data")
    else:
        raise UnsafeArchiveError(f"{archive.name} is neither a zip nor a tar archive")
    return names


def _check_name(name: str) -> None:
    path = PurePosixPath(name.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or (path.parts and ":" in path.parts[0]):
        raise UnsafeArchiveError(f"archive entry {name!r} would land outside the pack folder")


def _check_link(name: str, link: str) -> None:
    """A symbolic link may point only inside the pack, relative to where it sits."""
    if link.startswith("/"):
        raise UnsafeArchiveError(f"archive entry {name!r} links out of the pack (to {link!r})")
    depth = len(PurePosixPath(name).parent.parts)
    for part in PurePosixPath(link).parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            raise UnsafeArchiveError(f"archive entry {name!r} links out of the pack (to {link!r})")


def write_tracking(pack_dir: Path, names: list[str]) -> None:
    """ComfyUI-Manager's `.tracking`: the archive's names, newline-joined, no final newline."""
    write_atomic(pack_dir / TRACKING_NAME, "\n".join(names))


def exclude_record_from_git(clone: Path) -> None:
    """Keep the record out of `git status` of a clone (Manager would see a dirty pack)."""
    exclude = clone / ".git" / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    existing = exclude.read_text("utf-8") if exclude.is_file() else ""
    write_atomic(exclude, f"{existing.rstrip()}\n/{RECORD_NAME}\n".lstrip())


def swap_into_place(staged: Path, target: Path) -> Path | None:
    """Put the staged pack at `target` in one step; the old folder's new path, or None."""
    return swap_dir(staged, target)


def remove_tree(path: Path | None) -> None:
    """Delete a folder left over by a swap or a failed build; nothing when None."""
    if path is not None:
        shutil.rmtree(path, ignore_errors=True)
