import pytest

from restorations.jobs.states import State
from restorations.picwish import planner as poll_planner
from restorations.picwish.planner import (
    Ahead,
    Durations,
    concurrency,
    expected_end,
    expected_starts,
    first_poll_at,
    likely_end,
    likely_start,
    next_poll,
)

MEASURED = Durations(tuple(2.0 + i * 0.2 for i in range(31)), typical=10.0)  # 2.0 … 8.0 s
USUAL = MEASURED.usual  # 5.0


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
        Ahead(submitted=100.0, started=101.0, ends=expected_end(101.0, 103.0, 50)),  # at 105
        Ahead(submitted=101.0, started=None),
        Ahead(submitted=102.0, started=None),
    ]
    starts = expected_starts(queue, now=102.0, slots=2, durations=MEASURED)
    assert starts[2:] == [105.0, 105.0]  # both slots free up at 105


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


def test_progress_gives_the_finishing_time():
    # 3 s in and 50 % done: 3 s to go.
    delay = next_poll(
        state=State.PROCESSING, progress=50, elapsed_processing=3.0, durations=MEASURED
    )
    assert delay == 3.0 + poll_planner.AFTER_ETA


def test_too_little_progress_falls_back_to_the_first_check():
    delay = next_poll(
        state=State.PROCESSING, progress=1, elapsed_processing=1.0, durations=MEASURED
    )
    assert delay == poll_planner.first_check(MEASURED) - 1.0


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
    started = next_poll(
        state=State.PREPARING, progress=10, elapsed_processing=0.5, durations=MEASURED
    )
    queued = next_poll(
        state=State.PREPARING, progress=0, elapsed_processing=None, durations=MEASURED
    )
    assert started == 0.5 * 100 / 10 - 0.5 + poll_planner.AFTER_ETA
    assert queued > started


def test_delays_are_bounded():
    delay = next_poll(
        state=State.PROCESSING, progress=99, elapsed_processing=60.0, durations=MEASURED
    )
    assert delay >= poll_planner.MIN_DELAY
    slow = next_poll(
        state=State.PROCESSING, progress=3, elapsed_processing=100.0, durations=MEASURED
    )
    assert slow == poll_planner.MAX_DELAY


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


def test_progress_predicts_the_end_once_it_says_enough():
    assert expected_end(100.0, observed=104.0, progress=50) == 108.0
    assert (
        expected_end(100.0, observed=100.1, progress=poll_planner.MIN_PROGRESS_FOR_ETA - 1) is None
    )


def test_a_finish_reported_in_whole_seconds_is_placed_by_progress_or_in_the_middle():
    assert likely_end(110.0, seen=115.0, expected=110.3) == 110.3  # progress foretold it
    assert likely_end(110.0, seen=115.0, expected=108.0) == 110.0  # never before the stamp
    assert likely_end(110.0, seen=115.0, expected=None) == 110.5
    assert likely_end(110.0, seen=110.4, expected=None) == 110.2  # not after it was seen
