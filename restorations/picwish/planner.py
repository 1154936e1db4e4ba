"""When to poll a PicWish task next.

PicWish allows about 2 requests per second per account, creates and polls together, so each
poll has to count. What is known: the task's state and progress, when PicWish started processing
it, how long this operation has recently taken on this account, and how many tasks the account
has ahead of it. PicWish works through an account's tasks a few at a time, oldest first, so a
queued task starts when an earlier one finishes.

The plan, per task: replay the account's queue to estimate when PicWish starts the task, then
poll once a little after the shortest likely processing time from there. Most tasks that are
done by then are noticed within the lag budget. One still processing reports a state and a
progress; how those relate to the time left is not documented, so the planner learns it from
the account's finished tasks: at which share of their processing time they made the same
report. That bounds the task's end, and the next poll lands just after the latest likely end,
or a (smaller) lag budget after the earliest when the bounds are wide (a report that says
little, such as progress stuck at one value, leaves only the durations seen to go by). When a
task finishes, the oldest queued one is known to start then, and its first poll moves forward
to match.
"""

import heapq
import math
from dataclasses import dataclass
from statistics import median, quantiles

from restorations.jobs.states import State

QUEUED_STATES = frozenset({State.QUEUED, State.PREPARING, State.WAITING})
# The order of the states a task reports while PicWish processes it. The planner assumes only
# that reports move forward: to a later stage, or within one to a progress no lower.
STAGES = {State.PREPARING: 1, State.PROCESSING: 2, State.PROCESSING_LOOP: 2, State.PUBLISHING: 3}
MIN_DELAY = 0.3
MAX_DELAY = 60.0
# How late after the shortest likely duration the first poll comes. Larger means fewer second
# polls but later notice of quick tasks. Tuned with `make bench-poller` (docs/benchmarks.md).
LAG_BUDGET = 2.4
# The same for a later poll, when the task's reports leave its end wide open: the dispatcher may
# book such a poll up to half a second late (`dispatch.LATER_POLL_SLACK`) to serve first polls.
LATER_LAG_BUDGET = 2.0
# Aim this long after the latest likely finishing time.
AFTER_ETA = 0.35
# A finished task's shares are estimates: its start and end come from PicWish's whole-second
# stamps, each placed within its second, so a share may be off by this many seconds over the
# task's duration (a lot for a 2 s task). Each share bounds a report only with that margin
# given away, so that a short task's rough shares cannot put a poll late.
SHARE_ERROR = 0.5
# Of the shares that bound a report's, the outermost one in ROBUST_SHARES is taken for noise.
ROBUST_SHARES = 50
# Finished tasks needed before the longest of them bounds how long a task may take.
MIN_SAMPLES = 5
# Finished tasks needed before the measured concurrency replaces the assumed one.
MIN_INTERVALS = 8
# Estimated starts and ends can each be off by up to half of PicWish's whole-second stamps, so
# a task can seem to start a little before the one whose slot it took ended: the measured
# concurrency ignores overlaps shorter than this.
OVERLAP_TOLERANCE = 1.0
# A task still queued when the replay says it should have started is polled again after at
# least this share of the usual duration, unless a finishing task pulls the poll forward.
QUEUED_RECHECK_SHARE = 1.5


def stage_of(state: int) -> int:
    """A reported state's place in STAGES; 0 for a state not reported while processing."""
    return STAGES.get(state, 0)


@dataclass(frozen=True)
class Seen:
    """A report a finished task made while PicWish processed it, and when: as a share (0..1)
    of its processing time."""

    stage: int
    progress: int
    share: float
    margin: float = 0.0  # how far off `share` may be (see SHARE_ERROR)


@dataclass(frozen=True)
class Durations:
    """What one operation's recently finished tasks on one account showed: their processing
    times (seconds) and the reports their polls saw."""

    samples: tuple[float, ...]
    typical: float  # the operation's default before anything is measured
    seen: tuple[Seen, ...] = ()

    @property
    def usual(self) -> float:
        return median(self.samples) if self.samples else self.typical

    @property
    def shortest(self) -> float:
        """The 5th percentile; a third of the usual time until there are enough samples.

        Estimated with the exclusive method, which extrapolates below the smallest sample while
        there are fewer than 19: the smallest of a few samples lies well above the 5th
        percentile (of five durations, at about the 17th on average)."""
        if len(self.samples) < MIN_SAMPLES:
            return self.usual / 3
        return max(0.0, quantiles(self.samples, n=20, method="exclusive")[0])

    @property
    def longest(self) -> float:
        """The longest processing time seen; unbounded until there are enough samples."""
        return max(self.samples) if len(self.samples) >= MIN_SAMPLES else math.inf


def _clamp(delay: float) -> float:
    return max(MIN_DELAY, min(MAX_DELAY, delay))


def likely_start(processed_second: float, submitted: float, expected: float | None) -> float:
    """When PicWish started a task it reports started in the whole second `processed_second`:
    at `expected` (when it was sent, or when the queue's replay says a slot freed for it) if
    that falls in the part of that second after the task was sent (`submitted`), else in the
    middle of that part."""
    low = max(processed_second, submitted)
    high = max(processed_second + 1, low)
    if expected is not None and low <= expected <= high:
        return expected
    return (low + high) / 2


def first_check(durations: Durations) -> float:
    """Seconds after processing starts at which to poll first."""
    return durations.shortest + LAG_BUDGET


def likely_end(completed_second: float, seen: float, expected: float | None) -> float:
    """When PicWish finished a task it reports finished in the whole second `completed_second`,
    first seen finished at `seen`: the finishing time progress predicted (`expected`) if that
    fits, else the middle of the part of that second before it was seen."""
    low = completed_second
    high = max(low, min(completed_second + 1, seen))
    if expected is not None:
        return min(max(expected, low), high)
    return (low + high) / 2


def share_range(stage: int, progress: int, seen: tuple[Seen, ...]) -> tuple[float, float]:
    """Between which shares of its processing time a task makes this report, as far as the
    finished tasks' reports tell: after the latest share at which they made an earlier report
    (lower stage, or lower progress in the stage), before the earliest at which they made a
    later one, each with its margin given away. (0, 1) when they say nothing, or contradict
    the order."""
    report = (stage, progress)
    before = sorted(s.share - s.margin for s in seen if (s.stage, s.progress) < report)
    after = sorted(s.share + s.margin for s in seen if (s.stage, s.progress) > report)
    low = max(0.0, before[-1 - len(before) // ROBUST_SHARES]) if before else 0.0
    high = min(1.0, after[len(after) // ROBUST_SHARES]) if after else 1.0
    return (low, high) if low <= high else (0.0, 1.0)


def same_report(stage: int, progress: int, seen: tuple[Seen, ...]) -> list[float]:
    """The shares at which finished tasks made exactly this report."""
    return [s.share for s in seen if (s.stage, s.progress) == (stage, progress)]


def end_range(elapsed: float, stage: int, progress: int, durations: Durations):
    """The earliest and latest processing times (seconds) of a task that made this report
    `elapsed` seconds into its processing: from `share_range`, and no longer than the longest
    duration seen while that is still possible (math.inf: unbounded)."""
    low_share, high_share = share_range(stage, progress, durations.seen)
    low = max(elapsed, elapsed / high_share) if high_share > 0 else elapsed
    high = elapsed / low_share if low_share > 0 else math.inf
    if low <= durations.longest < high:
        high = durations.longest
    return low, high


def expected_end(
    started: float, observed: float, stage: int, progress: int, durations: Durations
) -> float | None:
    """When a task PicWish started at `started` and saw making this report at `observed` will
    likely finish: where the finished tasks' shares of the same report put it (their median,
    else the middle of `share_range`), within `end_range`; None when they say nothing."""
    elapsed = observed - started
    low_share, high_share = share_range(stage, progress, durations.seen)
    if elapsed <= 0 or (low_share, high_share) == (0.0, 1.0):
        return None
    shares = same_report(stage, progress, durations.seen)
    share = median(shares) if shares else (low_share + high_share) / 2
    low, high = end_range(elapsed, stage, progress, durations)
    return started + min(max(elapsed / share, low), high) if share > 0 else None


@dataclass(frozen=True)
class Ahead:
    """One of the account's tasks in the replay of its queue (Unix times)."""

    submitted: float
    started: float | None  # when PicWish started it, if a poll has said so
    ends: float | None = None  # expected from its reports, or, once finished, when it did
    finished: bool = False
    usual: float | None = None  # its operation's usual duration, if not the replay's default


def expected_starts(
    tasks: list[Ahead], *, now: float, slots: int, durations: Durations | None = None
) -> list[float]:
    """When PicWish starts each task (known, or expected), replaying the account's queue oldest
    first; `tasks` must be in the order they were sent, finished ones included for as long as
    they held a slot that a task still in the queue may take.

    Each task holds one of `slots` slots from its start until its end: when it finished, else
    when its reports say it will, else after its usual duration (its own `usual`, else
    `durations.usual`). A task not seen finished is assumed to end no earlier than now.
    """
    ends: list[float] = []
    starts = []
    for task in tasks:
        free = heapq.heappop(ends) if len(ends) >= slots else task.submitted
        start = task.started if task.started is not None else max(task.submitted, free)
        if task.ends is not None:
            end = task.ends
        elif task.finished:
            end = start
        else:
            end = start + (task.usual if task.usual is not None else durations.usual)
        if not task.finished:
            end = max(now, end)
        heapq.heappush(ends, end)
        starts.append(start)
    return starts


def first_poll_at(start: float, durations: Durations) -> float:
    """When to poll first a task expected to start at `start` (Unix time). Kept as it is when
    it has passed: an overdue poll keeps its place in the key's order (earliest first)."""
    return start + first_check(durations)


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
    low, high = end_range(elapsed_processing, stage_of(state), progress, durations)
    return _clamp(min(low + LATER_LAG_BUDGET, high + AFTER_ETA) - elapsed_processing)


def concurrency(intervals: list[tuple[float, float]], *, default: int) -> int:
    """The most tasks seen processing at once, from (start, end) times, not counting overlaps
    within OVERLAP_TOLERANCE; `default` until there are enough of them to tell."""
    if len(intervals) < MIN_INTERVALS:
        return default
    edges = sorted(
        [(start, 1) for start, _ in intervals]
        + [(max(start, end - OVERLAP_TOLERANCE), -1) for start, end in intervals]
    )
    running = most = 0
    for _, step in edges:  # at equal times, ends (-1) sort before starts: no false overlap
        running += step
        most = max(most, running)
    return max(1, most)
