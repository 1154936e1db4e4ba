"""When to poll a PicWish task next.

PicWish allows about 2 requests per second per account, creates and polls together, so each
poll has to count. What is known: the task's state and progress, when PicWish started processing
it, how long this operation has recently taken on this account, and how many tasks the account
has ahead of it. PicWish works through an account's tasks a few at a time, oldest first, so a
queued task starts when an earlier one finishes.

The plan, per task: replay the account's queue to estimate when PicWish starts the task, then
poll once a little after the shortest likely processing time from there. Most tasks that are
done by then are noticed within the lag budget; one still processing reports its progress,
which gives its finishing time, and one more poll lands just after it. When a task finishes,
the oldest queued one is known to start then, and its first poll moves forward to match.
"""

import heapq
from dataclasses import dataclass
from statistics import median

from restorations.jobs.states import State

QUEUED_STATES = frozenset({State.QUEUED, State.PREPARING, State.WAITING})
MIN_DELAY = 0.3
MAX_DELAY = 60.0
# How late after the shortest likely duration the first poll comes. Larger means fewer second
# polls but later notice of quick tasks. Tuned with `make bench-poller` (docs/benchmarks.md).
LAG_BUDGET = 2.8
# Aim this long after a finishing time estimated from progress.
AFTER_ETA = 0.35
# Finished tasks needed before the measured concurrency replaces the assumed one.
MIN_INTERVALS = 8
# Progress this low says too little about the rate to trust an estimate made from it.
MIN_PROGRESS_FOR_ETA = 3
# A task still queued when the replay says it should have started is polled again after at
# least this share of the usual duration, unless a finishing task pulls the poll forward.
QUEUED_RECHECK_SHARE = 1.5


@dataclass(frozen=True)
class Durations:
    """Recent processing times (seconds) of one operation on one account."""

    samples: tuple[float, ...]
    typical: float  # the operation's default before anything is measured

    @property
    def usual(self) -> float:
        return median(self.samples) if self.samples else self.typical

    @property
    def shortest(self) -> float:
        """About the 5th percentile; a third of the usual time until there are enough samples."""
        if len(self.samples) < 5:
            return self.usual / 3
        ordered = sorted(self.samples)
        return ordered[int(len(ordered) * 0.05)]


def _clamp(delay: float) -> float:
    return max(MIN_DELAY, min(MAX_DELAY, delay))


def likely_start(processed_second: float, submitted: float) -> float:
    """When PicWish started a task it reports started in the whole second `processed_second`:
    the middle of that second's part after the task was sent (`submitted`)."""
    low = max(processed_second, submitted)
    high = max(processed_second + 1, low)
    return (low + high) / 2


def first_check(durations: Durations) -> float:
    """Seconds after processing starts at which to poll first."""
    return durations.shortest + LAG_BUDGET


@dataclass(frozen=True)
class Ahead:
    """A task PicWish holds ahead of the one being planned (Unix times)."""

    submitted: float
    started: float | None  # when PicWish started it, if a poll has said so
    progress: int = 0
    observed: float | None = None  # when that progress was seen


def expected_starts(
    tasks: list[Ahead], *, now: float, slots: int, durations: Durations
) -> list[float]:
    """When PicWish starts each task (known, or expected), replaying the account's queue oldest
    first; `tasks` must be in the order they were sent.

    Each task holds one of `slots` slots from its start until its expected end: from its
    progress when seen, else the usual duration. A task not seen finished is assumed to end no
    earlier than now.
    """
    ends: list[float] = []
    starts = []
    for task in tasks:
        start = (
            task.started if task.started is not None else _free_slot(ends, slots, task.submitted)
        )
        heapq.heappush(ends, max(now, start + _total(task, durations)))
        starts.append(start)
    return starts


def _free_slot(ends: list[float], slots: int, submitted: float) -> float:
    if len(ends) < slots:
        return submitted
    return max(submitted, heapq.heappop(ends))


def _total(task: Ahead, durations: Durations) -> float:
    if task.started is not None and task.observed and task.progress >= MIN_PROGRESS_FOR_ETA:
        return (task.observed - task.started) * 100.0 / task.progress
    return durations.usual


def first_poll(start: float, *, now: float, durations: Durations) -> float:
    """Seconds from now to the first poll of a task expected to start at `start`."""
    return _clamp(start + first_check(durations) - now)


def next_poll(
    *,
    state: int,
    progress: int,
    elapsed_processing: float | None,
    durations: Durations,
    queued_until: float = 0.0,
) -> float:
    """Seconds from now to the next poll of a task still in progress.

    `elapsed_processing` is how long PicWish has been processing it (None if not started);
    `queued_until` is, for a queued task, the seconds until the replay expects it to start.
    """
    if elapsed_processing is None:
        if state in QUEUED_STATES:
            # Still queued although the replay expected a start: the queue is longer than
            # believed. A finishing task will pull this poll forward (oldest queued first).
            recheck = durations.usual * QUEUED_RECHECK_SHARE
            return _clamp(max(queued_until, recheck) + first_check(durations))
        return _clamp(first_check(durations) / 2)
    if progress >= MIN_PROGRESS_FOR_ETA and elapsed_processing > 0:
        total = elapsed_processing * 100.0 / progress
        return _clamp(total - elapsed_processing + AFTER_ETA)
    return _clamp(max(first_check(durations) - elapsed_processing, durations.usual / 4))


def concurrency(intervals: list[tuple[float, float]], *, default: int) -> int:
    """The most tasks seen processing at once, from (start, end) times; `default` until there
    are enough of them to tell."""
    if len(intervals) < MIN_INTERVALS:
        return default
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, step in edges:  # at equal times, ends (-1) sort before starts: no false overlap
        running += step
        most = max(most, running)
    return max(1, most)
