"""What Ignition verified and placed under a models root, so warm starts read no model bytes.

One JSON file per root (`<root>/.ignition/manifest.json`). A record holds the file's source
identity, sha256, size and mtime as they were right after verification. A later run trusts a file
whose size and mtime still match its record and never re-reads it; anything else — a file
truncated, replaced or touched behind Ignition's back — is verified again.

Several processes (pods sharing a network volume) may update one manifest: every write re-reads
the file and merges under an exclusive lock file, then replaces it atomically, so no update is lost
and no reader ever sees half a file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ignition import bounded_json
from ignition.atomic import write_atomic
from ignition.place.lock import FileLock

_VERSION = 1


@dataclass(frozen=True)
class ManifestRecord:
    identity: str
    sha256: str
    size_bytes: int
    mtime_ns: int
    # Where the bytes came from (the source's download endpoint, redacted; "" when unknown):
    # what `ignition lock --from-running` writes into a lock.
    source: str = ""


def manifest_dir(root: Path) -> Path:
    """Ignition's bookkeeping under a models root; a dot-folder, so ComfyUI never lists it."""
    return root / ".ignition"


class Manifest:
    """Records of verified files under `root`, keyed by their path relative to it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._path = manifest_dir(root) / "manifest.json"
        self._records = self._load()

    def trusted(self, relative: str, *, sha256: str | None = None) -> ManifestRecord | None:
        """The record for `relative` if the file on disk still matches it (stat only, no read).

        With `sha256`, the record must also be for those bytes (the source may have changed).
        """
        record = self._records.get(relative)
        if record is None or (sha256 is not None and record.sha256 != sha256.lower()):
            return None
        try:
            stat = (self.root / relative).stat()
        except FileNotFoundError:
            return None
        if stat.st_size != record.size_bytes or stat.st_mtime_ns != record.mtime_ns:
            return None
        return record

    def record(
        self, relative: str, *, identity: str, sha256: str, source: str = ""
    ) -> ManifestRecord:
        """Remember that the file now at `relative` was verified to have `sha256`; a file
        verified again without a `source` keeps the one it was recorded with."""
        stat = (self.root / relative).stat()
        previous = self._records.get(relative)
        if not source and previous is not None and previous.sha256 == sha256.lower():
            source = previous.source
        entry = ManifestRecord(identity, sha256.lower(), stat.st_size, stat.st_mtime_ns, source)
        self._update({relative: entry}, forget=())
        return entry

    def forget(self, relative: str) -> None:
        self._update({}, forget=(relative,))

    def reload(self) -> None:
        """Re-read the file: another process may have recorded files since we loaded it."""
        self._records = self._load()

    def items(self) -> list[tuple[str, ManifestRecord]]:
        return sorted(self._records.items())

    def _update(self, changes: dict[str, ManifestRecord], forget: tuple[str, ...]) -> None:
        manifest_dir(self.root).mkdir(parents=True, exist_ok=True)
        # Held for milliseconds: poll briskly so parallel downloads finishing together barely wait.
        with FileLock(self._path.with_suffix(".lock"), poll_s=0.02):
            merged = self._load()
            merged.update(changes)
            for relative in forget:
                merged.pop(relative, None)
            document = {
                "version": _VERSION,
                "files": {key: asdict(value) for key, value in sorted(merged.items())},
            }
            write_atomic(self._path, json.dumps(document, indent=1) + "\n")
            self._records = merged

    def _load(self) -> dict[str, ManifestRecord]:
        try:
            # On a shared store anyone may have written it: bounded, like any foreign JSON.
            document = bounded_json.loads(self._path.read_bytes(), what="manifest")
        except (FileNotFoundError, ValueError):
            # A damaged manifest only costs a re-verification; it must never stop a start.
            return {}
        files = document.get("files") if isinstance(document, dict) else None
        files = files if isinstance(files, dict) else None
        records: dict[str, ManifestRecord] = {}
        for key, value in (files or {}).items():
            try:
                records[key] = ManifestRecord(
                    identity=str(value["identity"]),
                    sha256=str(value["sha256"]),
                    size_bytes=int(value["size_bytes"]),
                    mtime_ns=int(value["mtime_ns"]),
                    source=str(value.get("source") or ""),
                )
            except (KeyError, TypeError, ValueError):
                continue
        return records
