"""The telemetry blocklist as one marked block in the hosts file.

`write_block` is idempotent: it swaps the block between the markers for the current one and
leaves every other byte of the file as it was (a missing final newline is added before the block).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path

_log = logging.getLogger(__name__)

BEGIN_MARKER = "# >>> ignition telemetry blocklist (managed by ignition; edits here are lost) >>>"
END_MARKER = "# <<< ignition telemetry blocklist <<<"

_HOST_NAME = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


def load_blocklist() -> tuple[str, ...]:
    """The domains in the packaged blocklist.txt, in file order, without comments."""
    text = resources.files("ignition.privacy").joinpath("blocklist.txt").read_text("utf-8")
    return parse_blocklist(text.splitlines())


def parse_blocklist(lines: Iterable[str]) -> tuple[str, ...]:
    domains: list[str] = []
    for number, raw in enumerate(lines, start=1):
        name = raw.split("#", 1)[0].strip().lower()
        if not name:
            continue
        if not _HOST_NAME.match(name):
            raise ValueError(f"blocklist line {number}: {raw.strip()!r} is not a host name")
        if name not in domains:
            domains.append(name)
    return tuple(domains)


def render_block(domains: Sequence[str]) -> str:
    # `::` as well as 0.0.0.0: a resolver that prefers AAAA records would otherwise still connect.
    lines = [BEGIN_MARKER]
    for domain in domains:
        lines.append(f"0.0.0.0 {domain}")
        lines.append(f":: {domain}")
    lines.append(END_MARKER)
    return "\n".join(lines) + "\n"


def write_block(hosts_file: Path, domains: Sequence[str]) -> bool:
    """Put the blocklist into `hosts_file`; True when the block is in place afterwards.

    Steps: read the file (missing → warn, False) → cut out any previous block → append the
    current one → write only if the bytes changed (read-only → warn, False).
    """
    try:
        current = hosts_file.read_bytes()
    except FileNotFoundError:
        _log.warning("hosts file %s does not exist: telemetry blocklist not applied", hosts_file)
        return False
    except OSError as error:
        _log.warning("cannot read hosts file %s (%s): blocklist not applied", hosts_file, error)
        return False
    wanted = _without_block(current)
    if wanted and not wanted.endswith(b"\n"):
        wanted += b"\n"
    wanted += render_block(domains).encode("utf-8")
    if wanted == current:
        return True
    try:
        # Written in place, not via rename: Docker bind-mounts /etc/hosts, so a rename over it
        # fails (EBUSY) and would break the mount even where it succeeded.
        with hosts_file.open("r+b") as handle:
            handle.write(wanted)
            handle.truncate()
    except OSError as error:
        _log.warning(
            "hosts file %s is not writable (%s): telemetry blocklist not applied; the opt-out "
            "environment variables still are",
            hosts_file,
            error.strerror or error,
        )
        return False
    return True


def _without_block(content: bytes) -> bytes:
    """`content` minus our block: the begin marker, our entry lines, the end marker.

    A block whose end marker someone deleted ends at its first line that is not ours, so a line
    added after it is never lost.
    """
    begin, end = BEGIN_MARKER.encode(), END_MARKER.encode()
    kept: list[bytes] = []
    inside = False
    for line in content.splitlines(keepends=True):
        stripped = line.rstrip(b"\r\n")
        if not inside:
            if stripped == begin:
                inside = True
            else:
                kept.append(line)
        elif stripped == end:
            inside = False
        elif not stripped.startswith((b"0.0.0.0 ", b":: ")):
            inside = False
            kept.append(line)
    return b"".join(kept)
