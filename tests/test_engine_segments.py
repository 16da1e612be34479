"""Range bookkeeping: done ranges coalesce, pieces come in file order, idle connections steal."""

from ignition.fetch.segments import ByteRanges, SegmentPlan

MiB = 1 << 20


def test_done_ranges_coalesce_and_report_what_is_missing() -> None:
    done = ByteRanges([(10, 20), (30, 40)])
    done.add(20, 30)
    done.add(50, 60)
    assert done.as_list() == [(10, 40), (50, 60)]
    assert done.prefix_end() == 0
    assert done.missing(70) == [(0, 10), (40, 50), (60, 70)]
    done.add(0, 10)
    assert done.prefix_end() == 40
    assert done.total() == 50


def test_pieces_come_in_file_order_and_are_no_bigger_than_a_share() -> None:
    plan = SegmentPlan([(0, 64 * MiB)], connections=8, piece_bytes=16 * MiB, min_split_bytes=MiB)
    starts = []
    while (segment := plan.take()) is not None and segment.start not in starts:
        starts.append(segment.start)
        if len(starts) == 8:
            break
    assert starts == [i * 8 * MiB for i in range(8)]


def test_an_idle_connection_steals_the_back_half_of_the_busiest_segment() -> None:
    plan = SegmentPlan([(0, 32 * MiB)], connections=1, piece_bytes=32 * MiB, min_split_bytes=MiB)
    first = plan.take()
    assert first is not None
    first.position = 8 * MiB
    stolen = plan.take()
    assert stolen is not None
    assert (first.end, stolen.start, stolen.end) == (20 * MiB, 20 * MiB, 32 * MiB)


def test_a_failed_segment_gives_its_remainder_back() -> None:
    plan = SegmentPlan([(0, 4 * MiB)], connections=1, piece_bytes=4 * MiB, min_split_bytes=MiB)
    segment = plan.take()
    assert segment is not None
    segment.position = 3 * MiB
    plan.finish(segment)
    again = plan.take()
    assert again is not None
    assert (again.start, again.end) == (3 * MiB, 4 * MiB)
    again.position = again.end
    plan.finish(again)
    assert plan.take() is None


def test_tails_too_small_to_split_are_left_alone() -> None:
    plan = SegmentPlan([(0, 3 * MiB)], connections=1, piece_bytes=3 * MiB, min_split_bytes=MiB)
    busy = plan.take()
    assert busy is not None
    busy.position = MiB + MiB // 2  # 1.5 MiB left: halves would be under 1 MiB
    assert plan.take() is None
