"""What a provisioning run did, per model: the pipeline fills it in, progress and the CLI show
it, the pod runtime reads `.ok`. Stable JSON shape (`--json`, the status file).

The one mutable record, on purpose: it changes while the run proceeds. Only the pipeline (status,
result) and the run display (`progress.py`: bytes so far) write it; the stages never see it, they
exchange the frozen records of `records.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ignition.errors import IgnitionError
from ignition.records import SourceName

# pending: not started; fetching: bytes arriving; ok: fetched now; skipped: already in place;
# planned: would be fetched (--dry-run); duplicate: listed twice, handled once; missing: a
# workflow needs it, no source is known; failed: see `error`, `code` and `hint`;
# locked: pinned by `ignition lock` (its runs only).
Status = Literal[
    "pending", "fetching", "ok", "skipped", "planned", "duplicate", "missing", "failed", "locked"
]
IN_PLACE_STATUSES: frozenset[Status] = frozenset({"ok", "skipped", "planned", "duplicate"})


@dataclass
class ModelOutcome:
    """One file (or one bad entry): updated in place as the run proceeds."""

    name: str
    # "workflow": a workflow that cannot be read, or a model it needs that has no source;
    # "manifest" / "lock": IGNITION_MANIFEST or its lock (or one of its records) is unusable.
    source: SourceName | Literal["workflow", "manifest", "lock"]
    folder: str | None = None
    filename: str | None = None
    url: str | None = None  # redacted: no token, no signature
    size: int | None = None  # exact when known, else the source's estimate
    sha256: str | None = None
    status: Status = "pending"
    error: str | None = None  # what went wrong (the error's message)
    code: str | None = None
    hint: str | None = None  # what to do about it, apart from the message
    path: str | None = None
    bytes_done: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def in_place(self) -> bool:
        return self.status in IN_PLACE_STATUSES

    def record_error(self, error: IgnitionError, status: Status = "failed") -> None:
        """This entry failed (or `status`) because of `error`: message, stable code, hint."""
        self.status = status
        self.error = error.message
        self.code = error.code
        self.hint = error.hint or None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "folder": self.folder,
            "source": self.source,
            "url": self.url,
            "size": self.size,
            "sha256": self.sha256,
            "status": self.status,
            "error": self.error,
            "code": self.code,
            "hint": self.hint,
            "filename": self.filename,
            "path": self.path,
            "bytes_done": self.bytes_done,
            "warnings": self.warnings,
        }


@dataclass
class PackOutcome:
    """One custom node pack (or one bad entry, or one class no pack is known for)."""

    name: str  # the entry or workflow metadata as written, or the node class for "missing"
    # "registry" | "git" | "workflow" (a class nothing maps) | "python" (a manifest's python
    # entry, or a lock's packages) | "nodes" / "lock" (an entry or lock record that is unusable)
    source: str
    folder: str | None = None  # under custom_nodes
    pack_id: str | None = None
    version: str | None = None
    commit: str | None = None
    url: str | None = None  # redacted
    archive_sha256: str | None = None
    # True when the pack was inferred from a node class through the registry (a guess).
    guess: bool = False
    # pending | resolving | fetching | installing | ok | skipped | planned | duplicate |
    # missing | failed
    status: str = "pending"
    error: str | None = None
    code: str | None = None
    path: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def in_place(self) -> bool:
        return self.status in IN_PLACE_STATUSES

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "folder": self.folder,
            "pack_id": self.pack_id,
            "version": self.version,
            "commit": self.commit,
            "url": self.url,
            "archive_sha256": self.archive_sha256,
            "guess": self.guess,
            "status": self.status,
            "error": self.error,
            "code": self.code,
            "path": self.path,
            "warnings": self.warnings,
        }


@dataclass
class ProvisionReport:
    outcomes: list[ModelOutcome] = field(default_factory=list)
    packs: list[PackOutcome] = field(default_factory=list)
    # Disk preflight numbers (bytes), for the summary and for DiskFullError messages.
    needed_bytes: int = 0
    free_bytes: int | None = None

    @property
    def ok(self) -> bool:
        """True only if every requested file and pack is in place (or, in a dry run, could be)."""
        models_ok = all(outcome.in_place for outcome in self.outcomes)
        return models_ok and all(pack.in_place for pack in self.packs)

    def count(self, status: Status) -> int:
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "needed_bytes": self.needed_bytes,
            "free_bytes": self.free_bytes,
            "models": [outcome.to_json() for outcome in self.outcomes],
            "packs": [pack.to_json() for pack in self.packs],
        }
