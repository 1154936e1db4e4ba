import pytest

from restorations.jobs.states import State
from restorations.picwish import planner as poll_planner
from restorations.picwish.planner import (
    Ahead,
    Durations,
    Seen,
    concurrency,
    expected_end,
    expected_starts,
    first_poll_at,
    likely_end,
    likely_start,
    next_poll,
    share_range,
)

SAMPLES = tuple(2.0 + i * 0.2 for i in range(31))  # 2.0 … 8.0 s
MEASURED = Durations(SAMPLES, typical=10.0)
USUAL = MEASURED.usual  # 5.0
PROCESSING = poll_planner.stage_of(State.PROCESSING)
PUBLISHING = poll_planner.stage_of(State.PUBLISHING)


def learned(curve) -> Durations:
    """MEASURED, with reports made by finished tasks whose progress followed `curve` (share of
    the processing time -> progress), seen at every 1/200 of it."""
    seen = tuple(Seen(PROCESSING, curve(n / 200), n / 200) for n in range(200))
    return Durations(SAMPLES, typical=10.0, seen=seen)


LINEAR = learned(lambda share: int(100 * share))
LATE_JUMP = learned(lambda share: int(15 * share))
STUCK = learned(lambda share: 50)
PLATEAUS = learned(lambda share: 40 if share < 0.5 else 60)


def test_before_any_measurement_the_operations_typical_time_is_used():
    cold = Durations((), typical=9.0)
    assert cold.usual == 9.0 and cold.shortest == 3.0


def test_first_poll_comes_the_lag_budget_after_the_shortest_likely_duration():
    assert MEASURED.shortest == pytest.approx(2.12)
    assert first_poll_at(104.0, MEASURED) == pytest.approx(104.0 + 2.12 + poll_planner.LAG_BUDGET)


def test_the_shortest_likely_duration_of_a_few_samples_lies_below_the_smallest():
    # Five durations as evenly spread as five draws from 2-8 s are on average: the 5th
    # percentile of 2-8 s is 2.3 s, below the smallest of them.
    assert Durations((7.0, 3.0, 5.0, 4.0, 6.0), typical=10.0).shortest == pytest.approx(2.3)
    assert Durations((0.2, 3.0, 3.1, 3.2, 3.3), typical=10.0).shortest == 0.0  # never below 0


def test_tasks_start_at_once_while_slots_are_free():
    queue = [Ahead(submitted=100.0 + n, started=None) for n in range(3)]
    assert expected_starts(queue, now=103.0, slots=4, durations=MEASURED) == [100.0, 101.0, 102.0]


def test_a_queued_task_starts_when_the_earliest_task_ahead_ends():
    queue = [
        Ahead(submitted=100.0, started=100.0),  # no progress seen: ends after the usual 5 s
        Ahead(
            submitted=100.0, started=101.0, ends=expected_end(101.0, 103.0, PROCESSING, 50, LINEAR)
        ),
        Ahead(submitted=101.0, started=None),
        Ahead(submitted=102.0, started=None),
    ]
    starts = expected_starts(queue, now=102.0, slots=2, durations=MEASURED)
    assert starts[2:] == pytest.approx([105.0, 105.0], abs=0.05)  # both slots free up at 105


def test_a_finished_task_frees_its_slot_when_it_finished_not_when_that_was_seen():
    queue = [
        Ahead(submitted=100.0, started=100.0, ends=103.2, finished=True),
        Ahead(submitted=100.5, started=100.5),
        Ahead(submitted=101.0, started=None),
    ]
    starts = expected_starts(queue, now=106.0, slots=2, durations=MEASURED)
    assert starts[2] == 103.2


def test_a_task_seen_started_takes_the_slot_that_freed_first():
    queue = [
        Ahead(submitted=100.0, started=100.0, ends=102.0, finished=True),
        Ahead(submitted=100.0, started=100.0, ends=104.0, finished=True),
        Ahead(submitted=101.0, started=102.0),  # took the slot freed at 102
        Ahead(submitted=101.0, started=None),  # so this one waits for 104
    ]
    starts = expected_starts(queue, now=103.0, slots=2, durations=MEASURED)
    assert starts[3] == 104.0


def test_a_task_not_seen_finished_is_assumed_to_end_no_earlier_than_now():
    queue = [Ahead(submitted=100.0, started=100.0), Ahead(submitted=100.0, started=None)]
    starts = expected_starts(queue, now=130.0, slots=1, durations=MEASURED)
    assert starts[1] == 130.0


def poll_delay(durations: Durations, progress: int, elapsed: float, state=State.PROCESSING):
    return next_poll(
        state=state, progress=progress, elapsed_processing=elapsed, durations=durations
    )


def test_progress_is_not_read_as_linear_before_finished_tasks_show_what_it_means():
    # 3 s in at 50 %: nothing says 3 s are left, so the next poll comes the lag budget later.
    assert poll_delay(MEASURED, 50, 3.0) == poll_planner.LATER_LAG_BUDGET


def test_a_learned_linear_progress_gives_the_finishing_time():
    # Finished tasks said 50 % at half their time: 3 s in, 3 s to go.
    assert poll_delay(LINEAR, 50, 3.0) == pytest.approx(3.0 + poll_planner.AFTER_ETA, abs=0.25)


def test_a_learned_late_jump_gives_the_finishing_time_from_a_low_progress():
    # Progress creeping to 15 % over the processing time: 10 % is two thirds of the way.
    delay = poll_delay(LATE_JUMP, 10, 4.0)
    assert delay == pytest.approx(2.0 + poll_planner.AFTER_ETA, abs=0.3)
    assert poll_delay(LINEAR, 10, 4.0) >= 25.0  # the same report, read as linear: 40 s in all


def test_a_progress_that_says_nothing_leaves_the_durations_to_go_by():
    # Stuck at 50 %: every share reported it, so only the lag budget and the longest count.
    assert poll_delay(STUCK, 50, 3.0) == pytest.approx(poll_planner.LATER_LAG_BUDGET, abs=0.1)
    assert poll_delay(STUCK, 50, 7.0) == pytest.approx(8.0 - 7.0 + poll_planner.AFTER_ETA)
    # Past the longest duration seen, nothing bounds it: the lag budget again.
    assert poll_delay(STUCK, 50, 9.0) == pytest.approx(poll_planner.LATER_LAG_BUDGET, abs=0.25)


def test_a_plateau_bounds_the_end_by_where_it_starts_and_ends():
    # 40 % from 0 to half the time: 2 s in, the task takes at least 4 s (and at most 8 s).
    assert poll_delay(PLATEAUS, 40, 2.0) == pytest.approx(
        4.0 + poll_planner.LATER_LAG_BUDGET - 2.0, abs=0.2
    )
    # 60 % from half the time to the end: 3.5 s in, 3.5 to 7 s in all, too wide a range to
    # aim after its end: the lag budget after its start.
    assert poll_delay(PLATEAUS, 60, 3.5) == pytest.approx(poll_planner.LATER_LAG_BUDGET, abs=0.1)
    # 6.5 s in, 6.5 to 13 s, but none has taken more than 8 s.
    assert poll_delay(PLATEAUS, 60, 6.5) == pytest.approx(1.5 + poll_planner.AFTER_ETA)


def test_the_stage_is_part_of_the_report():
    # Finished tasks made every processing report before publishing: 50 % while publishing
    # means the end is near, not half-way.
    publishing = poll_delay(LINEAR, 50, 3.0, state=State.PUBLISHING)
    assert publishing < poll_planner.AFTER_ETA + 0.1 < poll_delay(LINEAR, 50, 3.0)
    assert poll_planner.stage_of(State.PROCESSING_LOOP) == PROCESSING


def test_a_report_lies_between_the_reports_before_and_after_it():
    seen = (
        Seen(PROCESSING, 30, 0.3),
        Seen(PROCESSING, 34, 0.34),
        Seen(PROCESSING, 60, 0.62),
        Seen(PUBLISHING, 5, 0.95),
    )
    assert share_range(PROCESSING, 40, seen) == (0.34, 0.62)  # only the nearest count
    assert share_range(PROCESSING, 34, seen) == (0.3, 0.62)  # its own share says no more
    assert share_range(PROCESSING, 99, seen) == (0.62, 0.95)  # a later stage comes after
    assert share_range(PUBLISHING, 50, seen) == (0.95, 1.0)
    assert share_range(PROCESSING, 40, ()) == (0.0, 1.0)  # nothing learned
    # Reports out of order (progress going down) contradict the order: they say nothing.
    assert share_range(PROCESSING, 40, (*seen, Seen(PROCESSING, 20, 0.8))) == (0.0, 1.0)


def test_one_share_in_fifty_on_each_side_is_taken_for_noise():
    early = tuple(Seen(PROCESSING, 10, 0.1 + n / 1000) for n in range(49)) + (
        Seen(PROCESSING, 10, 0.45),  # an estimate off by far
    )
    assert share_range(PROCESSING, 20, early) == pytest.approx((0.148, 1.0))


def test_the_longest_duration_bounds_only_once_there_are_enough_samples():
    assert MEASURED.longest == 8.0
    assert Durations((3.0, 4.0), typical=10.0).longest == float("inf")


def test_a_task_still_queued_waits_at_least_the_recheck_time():
    delay = next_poll(state=State.QUEUED, progress=0, elapsed_processing=None, durations=MEASURED)
    recheck = USUAL * poll_planner.QUEUED_RECHECK_SHARE + poll_planner.first_check(MEASURED)
    assert delay == recheck
    later = next_poll(
        state=State.QUEUED,
        progress=0,
        elapsed_processing=None,
        durations=MEASURED,
        queued_until=30.0,
    )
    assert later == 30.0 + poll_planner.first_check(MEASURED)


def test_preparing_after_processing_started_is_not_queued():
    preparing = poll_planner.stage_of(State.PREPARING)
    seen = (Seen(preparing, 10, 0.05), Seen(PROCESSING, 20, 0.1))  # 10 % until 0.05-0.1
    durations = Durations(SAMPLES, typical=10.0, seen=seen)
    started = poll_delay(durations, 10, 0.5, state=State.PREPARING)
    queued = next_poll(
        state=State.PREPARING, progress=0, elapsed_processing=None, durations=MEASURED
    )
    assert started == pytest.approx(0.5 / 0.1 + poll_planner.LATER_LAG_BUDGET - 0.5)  # 5-8 s in all
    assert queued > started


def test_delays_are_bounded():
    assert poll_delay(LINEAR, 99, 60.0) >= poll_planner.MIN_DELAY
    assert poll_delay(LINEAR, 3, 100.0) == poll_planner.MAX_DELAY


def test_concurrency_is_the_most_tasks_seen_processing_at_once():
    intervals = [(0, 6), (1, 5), (2, 7), (3, 8), (6, 10), (7, 9), (10, 13), (11, 14)]
    assert concurrency(intervals, default=2) == 4
    # One ending exactly when another starts is not an overlap.
    chain = [(n, n + 1) for n in range(8)]
    assert concurrency(chain, default=9) == 1
    assert concurrency(intervals[:3], default=3) == 3  # too few to tell


def test_concurrency_ignores_overlaps_as_small_as_the_whole_second_stamps_make():
    # Each task seems to start up to a second before the one whose slot it took ended.
    relay = [(n * 3.0, n * 3.0 + 3.9) for n in range(8)]
    assert concurrency(relay, default=9) == 1
    # An overlap longer than that is real.
    pairs = [(n * 3.0, n * 3.0 + 4.5) for n in range(8)]
    assert concurrency(pairs, default=9) == 2


def test_a_start_reported_in_whole_seconds_is_placed_in_the_middle_of_what_remains():
    assert likely_start(100.0, submitted=90.0, expected=None) == 100.5  # the whole second
    assert likely_start(100.0, submitted=100.6, expected=None) == 100.8  # not before sending
    assert likely_start(100.0, submitted=101.2, expected=None) == 101.2  # clocks apart


def test_a_start_is_where_it_was_expected_when_that_fits_the_reported_second():
    assert likely_start(100.0, submitted=90.0, expected=100.2) == 100.2
    assert likely_start(100.0, submitted=100.3, expected=100.3) == 100.3  # started on arrival
    # An expectation outside the reported second says nothing: the middle of it.
    assert likely_start(100.0, submitted=90.0, expected=101.7) == 100.5
    assert likely_start(100.0, submitted=100.6, expected=100.1) == 100.8


def test_the_likely_end_is_where_finished_tasks_made_the_same_report():
    assert expected_end(100.0, 104.0, PROCESSING, 50, LINEAR) == pytest.approx(108.0, abs=0.1)
    assert expected_end(100.0, 104.0, PROCESSING, 50, MEASURED) is None  # nothing learned
    assert expected_end(100.0, 104.0, PROCESSING, 50, STUCK) is None  # it says nothing
    # 40 % from 0 to half the time, 4 s in: 8 s at the least; the longest seen is 8 s.
    assert expected_end(100.0, 104.0, PROCESSING, 40, PLATEAUS) == pytest.approx(108.0)


def test_a_finish_reported_in_whole_seconds_is_placed_by_progress_or_in_the_middle():
    assert likely_end(110.0, seen=115.0, expected=110.3) == 110.3  # progress foretold it
    assert likely_end(110.0, seen=115.0, expected=108.0) == 110.0  # never before the stamp
    assert likely_end(110.0, seen=115.0, expected=None) == 110.5
    assert likely_end(110.0, seen=110.4, expected=None) == 110.2  # not after it was seen


def test_a_shares_margin_is_given_away_before_it_bounds_a_report():
    # A 2 s task's shares may be off by a quarter (half a second of stamps over 2 s): 80 % seen
    # at 0.36 of it says only that 50 % comes before 0.61.
    seen = (Seen(PROCESSING, 80, 0.36, margin=0.25), Seen(PROCESSING, 20, 0.3, margin=0.1))
    assert share_range(PROCESSING, 50, seen) == pytest.approx((0.2, 0.61))
    assert poll_planner.SHARE_ERROR == 0.5
