"""Allocator tuning for a process that reads sockets at line rate (glibc only; else a no-op).

asyncio reads every socket into a fresh 256 KiB bytes object. glibc serves blocks above its mmap
threshold (128 KiB until it adapts) with mmap and unmaps them when freed, so at 200 MB/s each
read faults fresh zeroed pages in: measured at about 0.4 s of system CPU per GB downloaded.
A 4 MiB threshold keeps those buffers in the heap, where they are reused.
"""

from __future__ import annotations

import functools

from ignition._libc import libc_function

_M_MMAP_THRESHOLD = -3  # glibc's malloc.h
_THRESHOLD_BYTES = 4 << 20


@functools.cache
def keep_socket_buffers_in_heap() -> None:
    mallopt = libc_function("mallopt")
    if mallopt is not None:  # else not glibc
        mallopt(_M_MMAP_THRESHOLD, _THRESHOLD_BYTES)
