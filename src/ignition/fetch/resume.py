"""A partial download that survives the process: the staging file and its small state record.

`<staging>.part` holds the bytes at their final offsets (sparse where missing);
`<staging>.part.json` says which ranges of it are done and for which source (the request's
identity, plus the size and ETag the server announced). Bytes are recorded as done only after they
were written, so a `kill -9` loses at most what arrived since the last save, and the record is
replaced atomically so it is never half-written. A record for another source, or one that cannot be
read, means the partial is worthless: both files are removed and the download starts over.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ignition import bounded_json
from ignition.atomic import write_atomic
from ignition.fetch.segments import ByteRanges

_VERSION = 1
# A record lists done ranges: a few KB even for a badly fragmented partial.
_MAX_RECORD_BYTES = 1024 * 1024


@dataclass
class PartialState:
    identity: str
    size: int | None = None
    etag: str | None = None
    done: ByteRanges = field(default_factory=ByteRanges)

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": _VERSION,
                "identity": self.identity,
                "size": self.size,
                "etag": self.etag,
                "done": self.done.as_list(),
            }
        )


def part_path(staging_path: Path) -> Path:
    return staging_path.with_name(staging_path.name + ".part")


def state_path(staging_path: Path) -> Path:
    return staging_path.with_name(staging_path.name + ".part.json")


def load_partial(staging_path: Path, identity: str) -> PartialState:
    """The recorded progress for this source, or a fresh state (removing a stale partial).

    Staging may be shared with other pods: a record or a `.part` that is a link (or anything but
    a plain file) is never followed; it is removed like any stale partial."""
    try:
        raw: Any = bounded_json.loads(
            _read_plain_file(state_path(staging_path)),
            what="partial download record",
            max_bytes=_MAX_RECORD_BYTES,
        )
        if raw["version"] != _VERSION or raw["identity"] != identity:
            raise ValueError("another source")
        if not stat.S_ISREG(os.lstat(part_path(staging_path)).st_mode):
            raise ValueError("not a plain file")
        done = ByteRanges([(int(s), int(e)) for s, e in raw["done"]])
        size = None if raw["size"] is None else int(raw["size"])
        etag = raw["etag"] if isinstance(raw["etag"], str) else None
        return PartialState(identity, size, etag, done)
    except (OSError, ValueError, KeyError, TypeError):
        discard_partial(staging_path)
        return PartialState(identity)


def open_part(staging_path: Path, state: PartialState) -> int:
    """A read-write descriptor on `<staging>.part`: the existing one to resume `state`, else a
    new file. Never through a link (O_NOFOLLOW), and a new file is created with O_EXCL, so
    nothing planted between the check and the open receives the bytes."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC
    if not state.done.total():
        discard_partial(staging_path)
        flags |= os.O_CREAT | os.O_EXCL
    return os.open(part_path(staging_path), flags, 0o644)


def _read_plain_file(path: Path) -> bytes:
    # O_NOFOLLOW: ELOOP for a link, so a planted link never makes us read another file.
    descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(descriptor, "rb") as handle:
        return handle.read(_MAX_RECORD_BYTES + 1)


def save_partial(staging_path: Path, state: PartialState) -> None:
    # A lost record after a crash only costs re-downloading the part: no fsync.
    write_atomic(state_path(staging_path), state.to_json(), durable=False)


def discard_partial(staging_path: Path) -> None:
    record = state_path(staging_path)
    for path in (part_path(staging_path), record):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
