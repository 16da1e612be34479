"""A lock file that works across processes and machines sharing a network volume.

`flock` is unreliable on network filesystems (RunPod network volumes included), so a lock is a
file created with O_EXCL, holding its owner (host, pid, a random nonce). The holder refreshes the
file's mtime every few seconds (the heartbeat). A lock whose heartbeat is older than
`stale_after_s` belongs to a holder that died (a killed pod): a waiter moves it aside under a
unique name — only one waiter's rename can succeed — checks that what it moved is the stale lock
it judged, and takes the lock.

The worst case (two waiters judging the same stale lock at the same instant) makes two holders
fetch the same file; never a corrupt one, because every file is verified before an atomic rename.
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


class FileLock:
    """Exclusive lock on `path`. Use `async with` from asyncio code, `with` from threads."""

    def __init__(
        self,
        path: Path,
        *,
        stale_after_s: float = 30.0,
        poll_s: float = 0.2,
        heartbeat_s: float = HEARTBEAT_S,
    ) -> None:
        self.path = path
        self.stale_after_s = stale_after_s
        self.poll_s = poll_s
        self.heartbeat_s = heartbeat_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(6)}"
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    # --- acquisition ----------------------------------------------------------------------
    def try_acquire(self) -> bool:
        """Take the lock if it is free or stale; never blocks."""
        if self._create():
            return True
        if self._remove_if_stale():
            return self._create()
        return False

    def acquire(self) -> None:
        while not self.try_acquire():
            time.sleep(self.poll_s)
        self._start_heartbeat()

    async def acquire_async(self) -> None:
        # Polling is the only option: the holder may be another machine, nothing can notify us.
        while not await asyncio.to_thread(self.try_acquire):  # noqa: ASYNC110
            await asyncio.sleep(self.poll_s)
        self._start_heartbeat()

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        if self._read_owner() == self.owner:
            self.path.unlink(missing_ok=True)

    def held(self) -> bool:
        """Still ours? (False once another process judged us dead and took over.)"""
        return self._read_owner() == self.owner

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
        await self.acquire_async()
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
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump({"owner": self.owner, "since": time.time()}, handle)
        return True

    def _read_owner(self) -> str | None:
        try:
            return str(json.loads(self.path.read_text(encoding="utf-8"))["owner"])
        except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
            return None

    def _remove_if_stale(self) -> bool:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return True
        if time.time() - stat.st_mtime < self.stale_after_s:
            return False
        judged = self._read_owner()
        aside = self.path.with_name(f"{self.path.name}.stale.{secrets.token_hex(6)}")
        try:
            self.path.rename(aside)
        except FileNotFoundError:
            return True  # another waiter removed it first; race for the new one
        try:
            moved = json.loads(aside.read_text(encoding="utf-8")).get("owner")
        except (json.JSONDecodeError, OSError, AttributeError):
            moved = None
        if moved != judged:
            # We moved a lock someone took in the meantime: hand it back if the slot is free.
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)
            aside.unlink(missing_ok=True)
            return False
        aside.unlink(missing_ok=True)
        return True

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="lock-heartbeat", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                return
