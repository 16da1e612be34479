"""Writing a staging file: space reserved up front, bytes written where they arrive, and the
disk asked to start on the final prefix early.

Both choices are about kernel and interpreter CPU at line rate, measured on ext4 with 1.1 GB
arriving over 16 connections (`benchmarks/bench_download.py`, and pwrite loops by hand):

- A sparse file that fills in out of order sends every write through delayed allocation and
  extent splitting: 1.0–3.1 s of system time per GB. Reserving the whole file first with
  fallocate(2) takes that to about 0.2 s, and a full disk is reported before the first byte.
- Writes happen on the event loop, straight from the connection's buffer, as aria2c and nginx
  do: handing each buffer to a writer thread cost 0.25 s of CPU more per GB (wake-ups, futures)
  and kept a second buffer per connection busy. A buffered write of 256 KiB takes a fraction of
  a millisecond; when the disk can't keep up, the kernel makes the write wait, which holds the
  senders back through TCP, which is the backpressure a download wants.

The file is fsynced before it is renamed into place. A pod with plenty of RAM can hold many GB of
a model as dirty pages when its last byte arrives, and that fsync would then wait for all of them
at the volume's speed; the hashing thread starts writeback of each hashed 64 MiB instead.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Sequence

from ignition._libc import libc_function


def reserve(fd: int, size: int) -> None:
    """Allocate `size` bytes for the file now. Raises OSError (ENOSPC) when they don't fit; a
    filesystem without fallocate is left to allocate as the bytes arrive."""
    fallocate = libc_function("fallocate")
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


def start_writeback(fd: int, offset: int, length: int) -> None:
    """Ask the kernel to start writing [offset, offset+length) to disk now, without waiting
    (sync_file_range(2)), so that the fsync before the rename has little left to wait for."""
    function = libc_function("sync_file_range")
    if function is not None:
        function(fd, offset, length, _SYNC_FILE_RANGE_WRITE)  # advisory: failures are harmless


_SYNC_FILE_RANGE_WRITE = 2  # <fcntl.h>
