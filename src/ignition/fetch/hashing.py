"""sha256 of a file that arrives out of order, without a second pass at the end.

Segments land anywhere in the file, but sha256 must see the bytes in order. The hasher follows
the contiguous prefix: whenever it grows, the file's hashing thread reads the new bytes back (they
are still in the page cache, just written) and feeds them to the digest. hashlib and pread
release the GIL, so hashing runs beside the event loop; when the last segment lands, only the
tail is left to hash.

The thread lives as long as the transfer and is told about new bytes through a condition
variable, so growing the prefix never wakes the event loop; only `finish` waits for it. (A task
and a thread hand-off per catch-up cost about 0.2 s of CPU per GB in `bench_download.py`.)
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading

from ignition.fetch.disk import start_writeback

_BLOCK_BYTES = 1 << 20
_WRITEBACK_BYTES = 64 << 20


class PrefixHasher:
    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._digest = hashlib.sha256()
        self.hashed = 0
        self._written_back = 0
        self._target = 0  # written by the loop, read by the thread, under _changed
        self._stopping = False
        self._error: BaseException | None = None
        self._changed = threading.Condition()
        # One read buffer for the file's life: a fresh 1 MiB per catch-up would page-fault
        # zeroed memory in for every few MB hashed.
        self._block = bytearray(_BLOCK_BYTES)
        self._thread = threading.Thread(target=self._run, name="ignition-hash", daemon=True)
        self._thread.start()

    def advance(self, prefix_end: int) -> None:
        """Bytes [0, prefix_end) are final: hash up to there in the background."""
        if prefix_end <= self._target:
            return  # called after every write; most writes land beyond the prefix
        with self._changed:
            self._target = prefix_end
            self._changed.notify_all()

    async def finish(self, size: int) -> str:
        """Hash the rest up to `size` and return the hex digest."""
        self.advance(size)
        await asyncio.to_thread(self._wait_until_hashed, size)
        if self._error is not None:
            raise self._error
        return self._digest.hexdigest()

    async def close(self) -> None:
        """Stop hashing; returns once the thread no longer reads the file."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        await asyncio.to_thread(self._thread.join)

    # --- the hashing thread -------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._changed:
                while self.hashed >= self._target and not self._stopping:
                    self._changed.wait()
                if self._stopping:
                    return
                end = self._target
            try:
                self._hash_until(end)
            except BaseException as error:  # handed to finish(), which raises it
                self._error = error
            with self._changed:
                self._changed.notify_all()  # wake finish()
            if self._error is not None:
                return

    def _hash_until(self, end: int) -> None:
        view = memoryview(self._block)
        while self.hashed < end and not self._stopping:
            wanted = min(_BLOCK_BYTES, end - self.hashed)
            got = os.preadv(self._fd, [view[:wanted]], self.hashed)
            if got <= 0:
                raise OSError(f"staging file ended at byte {self.hashed} while hashing")
            self._digest.update(view[:got])
            self.hashed += got
            if self.hashed - self._written_back >= _WRITEBACK_BYTES:
                # The hashed prefix is final: let the disk start on it now, so the fsync
                # before the rename waits for the tail only, not for GBs of dirty pages.
                start_writeback(self._fd, self._written_back, self.hashed - self._written_back)
                self._written_back = self.hashed

    def _wait_until_hashed(self, size: int) -> None:
        with self._changed:
            while self.hashed < size and self._error is None and self._thread.is_alive():
                self._changed.wait()
