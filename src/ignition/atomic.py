"""The one way Ignition replaces a file or a folder: readers see the old thing or the new, never
half of either.

`write_atomic` writes a sibling temporary file (unique name: pods sharing a store may run under
the same pid), sets its mode before the first byte, optionally fsyncs it, renames it over the
target and fsyncs the directory. The temporary is opened with O_EXCL | O_NOFOLLOW, so neither a
stale temporary with a looser mode nor a link planted by a neighbour can redirect the bytes.

`swap_dir` moves a fully staged folder into place (a custom node pack): with Linux's
renameat2(RENAME_EXCHANGE) the old and new folders trade places in one step, elsewhere the old
one is moved aside first. Either way the caller removes what comes back.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import secrets
from pathlib import Path

from ignition._libc import libc_function

_EXCHANGE = 2  # RENAME_EXCHANGE, <linux/fs.h>
_AT_FDCWD = -100


def write_atomic(
    path: Path,
    data: bytes | str,
    *,
    mode: int = 0o644,
    durable: bool = True,
) -> None:
    """Replace `path` with `data` (str is written as UTF-8).

    `mode` is the file's mode from its first byte (0o600 for secrets). `durable` fsyncs the file
    and its folder, for records that must survive a power cut (manifests, credentials); status
    files rewritten every second pass False. Raises OSError; the temporary is gone either way.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(temporary, flags, mode)
    try:
        os.fchmod(fd, mode)  # the umask may have narrowed it; the caller's mode is the contract
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view) :]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        temporary.unlink(missing_ok=True)
        raise
    os.close(fd)
    try:
        temporary.replace(path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    if durable:
        sync_dir(path.parent)


def move_into_place(source: Path, target: Path, *, durable: bool = True) -> None:
    """Rename a finished file (already fsynced by its writer) over `target`, on one filesystem."""
    source.replace(target)
    if durable:
        sync_dir(target.parent)


def swap_dir(staged: Path, target: Path) -> Path | None:
    """Put the folder `staged` at `target` in one step; return where the old `target` went
    (for the caller to delete), or None when there was none.

    Both must be on one filesystem. With RENAME_EXCHANGE the old folder ends up at `staged`'s
    path; without it (not Linux, or a filesystem that lacks it) the old folder is renamed to a
    sibling first, leaving a moment in which `target` does not exist, never one where it is half
    written.
    """
    if not target.exists() and not target.is_symlink():
        staged.replace(target)
        sync_dir(target.parent)
        return None
    if _exchange(staged, target):
        sync_dir(target.parent)
        return staged
    aside = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
    target.replace(aside)
    staged.replace(target)
    sync_dir(target.parent)
    return aside


def sync_dir(folder: Path) -> None:
    """fsync a folder so a rename in it survives a crash; filesystems that can't, skip it."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _exchange(first: Path, second: Path) -> bool:
    """renameat2(RENAME_EXCHANGE): True when the two paths traded places."""
    renameat2 = libc_function("renameat2")
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _EXCHANGE) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # the filesystem can't exchange: fall back to moving aside
    raise OSError(error, os.strerror(error), str(second))
