"""Range planning: which bytes are done, which are being fetched, and who fetches what next.

The missing ranges are cut into pieces taken in file order, so the contiguous prefix (what the
hasher can digest) grows steadily during the download instead of all at once at its end. Pieces
are as large as possible (fewer requests) but no larger than a connection's share of the file, so
small files still spread over every connection. When no piece is left, an idle connection steals
the back half of the segment with the most bytes still to come (work stealing), so the last
seconds keep every connection busy instead of waiting for one slow tail. A segment that fails
hands its unfetched remainder back as a missing range.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass


class ByteRanges:
    """A set of disjoint, coalesced [start, end) ranges."""

    def __init__(self, ranges: list[tuple[int, int]] | None = None) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in ranges or []:
            self.add(start, end)

    def add(self, start: int, end: int) -> None:
        if start >= end:
            return
        # Every range that touches [start, end) merges into it.
        lo = bisect.bisect_left(self._ends, start)
        hi = bisect.bisect_right(self._starts, end)
        if lo < hi:
            start = min(start, self._starts[lo])
            end = max(end, self._ends[hi - 1])
        self._starts[lo:hi] = [start]
        self._ends[lo:hi] = [end]

    def prefix_end(self) -> int:
        """Where the contiguous run from byte 0 ends (0 when byte 0 is missing)."""
        return self._ends[0] if self._starts and self._starts[0] == 0 else 0

    def total(self) -> int:
        return sum(e - s for s, e in zip(self._starts, self._ends, strict=True))

    def missing(self, size: int) -> list[tuple[int, int]]:
        """The complement within [0, size)."""
        gaps: list[tuple[int, int]] = []
        position = 0
        for start, end in zip(self._starts, self._ends, strict=True):
            if start > position:
                gaps.append((position, min(start, size)))
            position = max(position, end)
        if position < size:
            gaps.append((position, size))
        return [(s, e) for s, e in gaps if s < e]

    def as_list(self) -> list[tuple[int, int]]:
        return list(zip(self._starts, self._ends, strict=True))


@dataclass(eq=False)
class Segment:
    """Bytes [position, end) still to fetch; `end` shrinks when another connection steals."""

    start: int
    end: int
    position: int = -1

    def __post_init__(self) -> None:
        if self.position < 0:
            self.position = self.start

    @property
    def remaining(self) -> int:
        return self.end - self.position


class SegmentPlan:
    def __init__(
        self,
        missing: list[tuple[int, int]],
        *,
        connections: int,
        piece_bytes: int,
        min_split_bytes: int,
    ) -> None:
        self._min_split = min_split_bytes
        total = sum(end - start for start, end in missing)
        share = -(-total // max(connections, 1))
        piece = max(min_split_bytes, min(piece_bytes, share))
        self._missing = _split(sorted(missing), piece, min_split_bytes)
        self._active: list[Segment] = []

    def next_piece(self) -> tuple[int, int]:
        """The range the next `take` hands out when pieces are left."""
        return self._missing[0]

    def take(self) -> Segment | None:
        """The next piece of work for an idle connection, or None when the file needs no more."""
        if self._missing:
            start, end = self._missing.pop(0)
            segment = Segment(start, end)
        else:
            victim = max(self._active, key=lambda s: s.remaining, default=None)
            if victim is None or victim.remaining < 2 * self._min_split:
                return None
            # Split on a 64 KiB boundary: whole pages for the writes and the reads that hash them.
            middle = (victim.position + victim.remaining // 2) & ~0xFFFF
            segment = Segment(middle, victim.end)
            victim.end = middle
        self._active.append(segment)
        return segment

    def finish(self, segment: Segment) -> None:
        """`segment` stopped (done or failed): whatever it did not fetch is missing again."""
        self._active.remove(segment)
        if segment.position < segment.end:
            bisect.insort(self._missing, (segment.position, segment.end))


def _split(
    ranges: list[tuple[int, int]], piece_bytes: int, min_piece_bytes: int
) -> list[tuple[int, int]]:
    """Cut `ranges` into pieces of about `piece_bytes`, ending on 64 KiB boundaries."""
    parts: list[tuple[int, int]] = []
    for start, end in ranges:
        position = start
        while position < end:
            cut = min(end, (position + piece_bytes + 0xFFFF) & ~0xFFFF)
            if end - cut < min_piece_bytes // 2:
                cut = end  # no crumbs at the end of a range
            parts.append((position, cut))
            position = cut
    return parts
