"""The connection log folded into one row per (remote, process): first seen, last seen, count."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ConnectionSummary:
    remote: str  # "ip:port" or "[ipv6]:port"
    process: str
    first_seen: str  # the log's UTC timestamps; ISO text sorts in time order
    last_seen: str
    count: int  # samples in which the connection was seen


def summarize(lines: Iterable[str]) -> list[ConnectionSummary]:
    """Rows ordered by first sighting; lines that are not monitor records are skipped."""
    rows: dict[tuple[str, str], ConnectionSummary] = {}
    for line in lines:
        fields = line.strip().split(maxsplit=5)
        if len(fields) != 6 or not fields[3].startswith("local:"):
            continue
        stamp, _protocol, remote, _local, _pid, process = fields
        key = (remote, process)
        known = rows.get(key)
        if known is None:
            rows[key] = ConnectionSummary(remote, process, stamp, stamp, 1)
        else:
            rows[key] = ConnectionSummary(
                remote,
                process,
                min(known.first_seen, stamp),
                max(known.last_seen, stamp),
                known.count + 1,
            )
    return sorted(rows.values(), key=lambda row: (row.first_seen, row.remote, row.process))


def summarize_file(log_file: Path) -> list[ConnectionSummary]:
    """Rows for the log at `log_file`; a log that does not exist yet has none."""
    try:
        with log_file.open(encoding="utf-8", errors="replace") as handle:
            return summarize(handle)
    except FileNotFoundError:
        return []
