"""A lock file that works across processes and machines sharing a network volume.

`flock`/`fcntl` locks are unreliable on network filesystems (NFS needs a lock daemon that many
setups lack, FUSE-based volumes often ignore them, and a lock held by a dead client can linger),
so a lock is a plain file created with O_EXCL — exclusive create is atomic on local filesystems
and on NFSv3+ servers. It holds its owner (host, pid, a random nonce) and a heartbeat counter.

Heartbeat: the holder rewrites the counter every `heartbeat_s` through the descriptor it created
the file with (and fsyncs, so the write reaches the server). A waiter reads the file's content
(open() revalidates the NFS attribute cache) and judges the lock stale only when the content has
not changed for `stale_after_s` on the waiter's OWN monotonic clock: no comparison between the
holder's clock, the server's clock and ours, so clock skew between pods cannot expire a live lock.

Takeover: the waiter renames the stale file aside under a unique name — only one waiter's rename
can succeed — then checks that what it moved is exactly what it judged (a late heartbeat means
the holder was alive after all: the file is linked back) and races for a fresh O_EXCL create.
A holder that was taken over writes its later heartbeats into the moved-aside inode, where they
harm nothing, and `held()` tells it the lock is gone.

Worst case: a holder frozen for longer than `stale_after_s` (a paused VM, a network partition
that hides its beats) is taken over while it still runs, and two processes fetch the same file.
Each verifies its bytes before an atomic rename, so the result is a wasted download, never a
corrupt or partial model.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

HEARTBEAT_S = 5.0
STALE_AFTER_S = 30.0
# The heartbeat rewrites the record in place; a fixed width means no write ever leaves a tail
# of an older, longer record behind.
_RECORD_BYTES = 256


class FileLock:
    """Exclusive lock on `path`. Use `with` from threads; asyncio code polls `try_acquire` in a
    thread (`pipeline._claim`, which takes the lock only with a fetch slot in hand)."""

    def __init__(
        self,
        path: Path,
        *,
        stale_after_s: float = STALE_AFTER_S,
        poll_s: float = 0.2,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.path = path
        self.stale_after_s = stale_after_s
        self.poll_s = poll_s
        self.heartbeat_s = min(heartbeat_s, stale_after_s / 3)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"
        self._fd: int | None = None
        self._beats = 0
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        # What the current holder's file said when we first saw it, and when (our clock).
        self._observed: tuple[bytes, float] | None = None

    # --- acquisition ----------------------------------------------------------------------
    def try_acquire(self) -> bool:
        """Take the lock if it is free or stale, and start the heartbeat; never blocks.
        Staleness needs looks `stale_after_s` apart, so a single call only takes a free lock."""
        taken = self._create() or (self._remove_if_stale() and self._create())
        if taken:
            self._start_heartbeat()
        return taken

    def acquire(self) -> None:
        # Polling is the only option: the holder may be another machine, nothing can notify us.
        while not self.try_acquire():
            time.sleep(self.poll_s)

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        if self.held():
            self.path.unlink(missing_ok=True)
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def held(self) -> bool:
        """Still ours? (False once another process judged us dead and took over.)"""
        return self.holder() == self.owner

    def holder(self) -> str | None:
        """Who holds the lock now (`host:pid:nonce`), if anyone."""
        return _owner_of(self._read())

    # --- context managers -----------------------------------------------------------------
    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    async def __aenter__(self) -> FileLock:
        """Wait for the lock without blocking the loop (the custom_nodes lock, held for the
        whole of a node provisioning; model files use `pipeline._claim` with a fetch slot)."""
        # Polling is the only option: the holder may be another machine.
        while not await asyncio.to_thread(self.try_acquire):  # noqa: ASYNC110
            await asyncio.sleep(self.poll_s)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.release)

    # --- internals ------------------------------------------------------------------------
    def _create(self) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        self._fd, self._beats, self._observed = fd, 0, None
        try:
            self._write_record()
        except OSError:
            # A full volume: leave no empty lock behind for others to wait out.
            os.close(fd)
            self._fd = None
            self.path.unlink(missing_ok=True)
            raise
        return True

    def _write_record(self) -> None:
        assert self._fd is not None
        record = json.dumps({"owner": self.owner, "beat": self._beats, "since": time.time()})
        os.pwrite(self._fd, record.encode().ljust(_RECORD_BYTES), 0)
        os.fsync(self._fd)

    def _read(self) -> bytes | None:
        try:
            return self.path.read_bytes()
        except FileNotFoundError:
            return None

    def _remove_if_stale(self) -> bool:
        judged = self._read()
        if judged is None:
            return True  # released between our create and this read: race for it again
        now = time.monotonic()
        if self._observed is None or self._observed[0] != judged:
            self._observed = (judged, now)  # a new holder, or a heartbeat: alive
            return False
        if now - self._observed[1] < self.stale_after_s:
            return False
        aside = self.path.with_name(f"{self.path.name}.stale.{secrets.token_hex(6)}")
        try:
            self.path.rename(aside)
        except FileNotFoundError:
            return True  # another waiter removed it first; race for the new one
        try:
            moved = aside.read_bytes()
        except OSError:
            moved = None
        if moved != judged:
            # We moved a lock that beat (or was retaken) in the meantime: put it back if the
            # slot is still free, and start judging afresh.
            # (FileExistsError: someone took the free slot meanwhile; other errors: no hard
            # links on this filesystem. Either way that holder may now have a rival: the
            # worst case in the module docstring.)
            with contextlib.suppress(OSError):
                os.link(aside, self.path)
            aside.unlink(missing_ok=True)
            self._observed = None
            return False
        aside.unlink(missing_ok=True)
        self._observed = None
        return True

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="lock-heartbeat", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            self._beats += 1
            try:
                self._write_record()
            except OSError:
                return  # the file was taken over and removed (ESTALE on NFS): nothing to keep


def _owner_of(record: bytes | None) -> str | None:
    if record is None:
        return None
    try:
        return str(json.loads(record)["owner"])
    except (ValueError, KeyError, TypeError):
        return None
