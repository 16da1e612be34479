"""Open a log file that lives in a shared folder (/tmp) for appending, trusting nothing found there.

Another local user can plant a symlink at the log's path (root would then append to whatever it
points at) or pre-create the file world-writable (then read or forge the log). So the path is
opened with O_NOFOLLOW, and what is found must be a regular file of ours with one link; a file
that is not ours, a link, a hard-linked file, one with a looser mode than asked (someone may
already hold it open) or anything else is removed and a fresh one is made with O_EXCL.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

_APPEND = os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NOCTTY | os.O_NONBLOCK


def open_private_append(path: Path, mode: int = 0o600) -> io.TextIOWrapper:
    """`path` opened for appending text, a regular file owned by us with at most `mode`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = _open_trusted(path, mode)
    if fd is None:
        path.unlink(missing_ok=True)  # unlink never follows a link: the link itself goes
        fd = os.open(path, _APPEND | os.O_CREAT | os.O_EXCL, mode)
    os.set_blocking(fd, True)
    os.fchmod(fd, mode)  # the umask may have narrowed a new file's mode
    return os.fdopen(fd, "a", encoding="utf-8")


def _open_trusted(path: Path, mode: int) -> int | None:
    """The existing file, open, when it can be trusted; None when it must be replaced or is
    missing. O_NONBLOCK: a FIFO planted at the path must not hang the open."""
    try:
        fd = os.open(path, _APPEND)
    except OSError:  # missing; ELOOP: a symlink; EACCES, ENXIO (a FIFO) …: not a log of ours
        return None
    info = os.fstat(fd)
    if (
        stat.S_ISREG(info.st_mode)
        and info.st_uid == os.geteuid()
        and info.st_nlink == 1  # a hard link could be another user's way to a file of ours
        # Once looser (0666), someone may hold it open and write on: a fresh file shuts them out.
        and not stat.S_IMODE(info.st_mode) & ~mode
    ):
        return fd
    os.close(fd)
    return None
