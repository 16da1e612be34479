"""Writing a staging file: its space reserved up front, its bytes written where they arrive.

Both choices are about kernel and interpreter CPU at line rate, measured on ext4 with 1.1 GB
arriving over 16 connections (`benchmarks/bench_download.py`, and pwrite loops by hand):

- A sparse file that fills in out of order sends every write through delayed allocation and
  extent splitting: 1.0–3.1 s of system time per GB. Reserving the whole file first with
  fallocate(2) takes that to about 0.2 s, and a full disk is reported before the first byte.
- Writes happen on the event loop, straight from the connection's buffer, as aria2c and nginx
  do: handing each buffer to a writer thread cost 0.25 s of CPU more per GB (wake-ups, futures)
  and kept a second buffer per connection busy. A buffered write of 512 KiB takes a fraction of
  a millisecond; when the disk can't keep up, the kernel makes the write wait, which holds the
  senders back through TCP, which is the backpressure a download wants.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
from collections.abc import Sequence


def reserve(fd: int, size: int) -> None:
    """Allocate `size` bytes for the file now. Raises OSError (ENOSPC) when they don't fit; a
    filesystem without fallocate is left to allocate as the bytes arrive."""
    fallocate = _fallocate()
    if fallocate is None or size <= 0:
        return
    if fallocate(fd, 0, 0, size) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            raise OSError(code, os.strerror(code))


def write_at(fd: int, chunks: Sequence[bytes | memoryview], offset: int) -> int:
    """pwritev the chunks at `offset` (no joining copy); loops over short writes."""
    total = sum(len(c) for c in chunks)
    pending: list[bytes | memoryview] = list(chunks)
    while pending:
        written = os.pwritev(fd, pending, offset)
        offset += written
        while pending and written >= len(pending[0]):
            written -= len(pending[0])
            pending.pop(0)
        if pending and written:
            pending[0] = memoryview(pending[0])[written:]
    return total


@functools.cache
def _fallocate() -> ctypes._NamedFuncPointer | None:
    """glibc's fallocate(2), which (unlike posix_fallocate) never falls back to writing zeros."""
    try:
        function = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None  # not Linux/glibc: space is allocated as the bytes arrive
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return function
