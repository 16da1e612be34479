"""Range planning: which bytes are done, which are being fetched, and who fetches what next.

A file starts as one piece per connection (the missing ranges cut into about equal parts, none
smaller than `min_split_bytes`). An idle connection takes the next piece; when none is left it
steals the back half of the segment with the most bytes still to come
(work stealing), so the last seconds of a file keep every connection busy instead of waiting for
one slow tail. A segment that fails hands its unfetched remainder back as a missing range.
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
        self, missing: list[tuple[int, int]], min_split_bytes: int, connections: int
    ) -> None:
        self._min_split = min_split_bytes
        self._missing = _split(sorted(missing), connections, min_split_bytes)
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

    @property
    def idle(self) -> bool:
        """Nothing left to hand out and nobody fetching: the file is complete."""
        return not self._missing and not self._active


def _split(
    ranges: list[tuple[int, int]], pieces: int, min_piece_bytes: int
) -> list[tuple[int, int]]:
    """Cut `ranges` into about `pieces` parts of similar size, on 64 KiB boundaries.

    Splitting up front rather than by stealing from the first connection means no connection
    is cut short at the start (each cut wastes what it had in flight).
    """
    total = sum(end - start for start, end in ranges)
    target = max(min_piece_bytes, -(-total // max(pieces, 1)))
    parts: list[tuple[int, int]] = []
    for start, end in ranges:
        count = max(1, round((end - start) / target))
        step = -(-(end - start) // count)
        position = start
        while position < end:
            cut = min(end, (position + step + 0xFFFF) & ~0xFFFF)
            if end - cut < min_piece_bytes // 2:
                cut = end  # no crumbs at the end of a range
            parts.append((position, cut))
            position = cut
    return parts
