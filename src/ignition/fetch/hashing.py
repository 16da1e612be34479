"""sha256 of a file that arrives out of order, without a second pass at the end.

Segments land anywhere in the file, but sha256 must see the bytes in order. The hasher follows
the contiguous prefix: whenever it grows, a worker thread reads the new bytes back (they are still
in the page cache, just written) and feeds them to the digest. hashlib and pread release the GIL,
so hashing runs beside the event loop; when the last segment lands, only the tail is left to hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os

_BLOCK_BYTES = 1 << 20


class PrefixHasher:
    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._digest = hashlib.sha256()
        self.hashed = 0
        self._target = 0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        # One read buffer for the file's life: a fresh 1 MiB per catch-up would page-fault
        # zeroed memory in for every few MB hashed.
        self._block = bytearray(_BLOCK_BYTES)

    def advance(self, prefix_end: int) -> None:
        """Bytes [0, prefix_end) are final: hash up to there in the background."""
        self._target = max(self._target, prefix_end)
        if self._task is not None and self._task.done() and self._task.exception():
            return  # keep the failure for finish() to raise
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._catch_up())

    async def _catch_up(self) -> None:
        while self.hashed < self._target and not self._stopping:
            await asyncio.to_thread(self._hash_until, self._target)

    def _hash_until(self, end: int) -> None:
        view = memoryview(self._block)
        while self.hashed < end and not self._stopping:
            wanted = min(_BLOCK_BYTES, end - self.hashed)
            got = os.preadv(self._fd, [view[:wanted]], self.hashed)
            if got <= 0:
                raise OSError(f"staging file ended at byte {self.hashed} while hashing")
            self._digest.update(view[:got])
            self.hashed += got

    async def finish(self, size: int) -> str:
        """Hash the rest up to `size` and return the hex digest."""
        self.advance(size)
        assert self._task is not None
        await self._task
        return self._digest.hexdigest()

    async def close(self) -> None:
        """Stop hashing (the transfer failed); returns once the thread no longer reads the file."""
        self._stopping = True
        if self._task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(self._task)
