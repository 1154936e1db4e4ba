"""Where each photo in flight stands, as the pages show it: how many photos are ahead of it in
its queue, and when it will likely be done (docs/estimates.md says how each is made).

- PicWish photos: from the poll planner's view of the team's account (`picwish.estimates`).
- Built-in engine photos: the local workers take queued photos oldest first, from every team; a
  photo takes its operation's measured seconds per megapixel (the median of the most recently
  finished ones), or, once the engine has reported a tenth of the work, what its progress says,
  then the measured time to store its result.
- A result being saved is done within moments.
"""

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import median

from restorations.jobs.models import LOCAL_IN_FLIGHT, LOCAL_RAN, Engine, Task
from restorations.jobs.states import State
from restorations.picwish import estimates as picwish_estimates
from restorations.picwish import planner

# Seconds per megapixel before any photo has been measured: about the engine's slowest
# operation on a 2-core machine (docs/benchmarks.md).
LOCAL_SECONDS_PER_MEGAPIXEL = 1.5
# Photos the local workers restore at once until enough runs have been seen (make run's worker).
LOCAL_ASSUMED_CONCURRENCY = 2
# Reported progress (percent) from which a run's own pace predicts its end.
PROGRESS_TELLS = 10
# How many recent local runs give the measured speed and concurrency.
LOCAL_RECENT = 40
LOCAL_QUEUE_LIMIT = 300
SAVING_SECONDS = 1.0
# The seconds from the engine's end to the result stored, before any run has been measured.
LOCAL_SAVING_SECONDS = 0.3


@dataclass(frozen=True)
class Outlook:
    """`ahead`: photos before this one in its queue (None once it is being worked on).
    `done_at`: when it will likely be done, or None when nothing can tell (no PicWish key)."""

    ahead: int | None
    done_at: datetime | None

    def seconds_left(self, now: float | None = None) -> int | None:
        if self.done_at is None:
            return None
        now = time.time() if now is None else now
        return max(0, round(self.done_at.timestamp() - now))


def outlooks(tasks: Iterable[Task]) -> dict[int, Outlook]:
    """The outlook of each of `tasks` still in flight, by pk (final ones are left out)."""
    tasks = [task for task in tasks if not task.is_final]
    now = time.time()
    found: dict[int, tuple[int | None, float | None]] = {}
    if any(t.engine == Engine.LOCAL and t.state != State.SAVING_RESULT for t in tasks):
        found.update(_local(now))
    one_per_team = {
        t.team_id: t for t in tasks if t.engine == Engine.PICWISH and t.state != State.SAVING_RESULT
    }
    for task in one_per_team.values():
        found.update(picwish_estimates.for_team(task.team, now))
    result = {}
    for task in tasks:
        if task.state == State.SAVING_RESULT:
            ahead, done_at = None, now + SAVING_SECONDS
        elif task.pk in found:
            ahead, done_at = found[task.pk]
        else:
            continue  # moved on since the page read it
        when = None if done_at is None else datetime.fromtimestamp(done_at, tz=UTC)
        result[task.pk] = Outlook(ahead, when)
    return result


def _local(now: float) -> dict[int, tuple[int | None, float]]:
    fields = ("pk", "operation", "upload__width", "upload__height")
    recent = list(
        Task.objects.filter(LOCAL_RAN)
        .order_by("-processing_ends_at")
        .values_list("processing_started_at", "processing_ends_at", *fields[1:], "finished_at")[
            :LOCAL_RECENT
        ]
    )
    speed = _seconds_per_megapixel([row[:-1] for row in recent])
    # After the engine's work, the worker stores the result and its thumbnail before it takes
    # the next photo: a queued photo waits for that too.
    saves = [(done - end).total_seconds() for _, end, *_, done in recent if done and done >= end]
    after = median(saves) if saves else LOCAL_SAVING_SECONDS
    slots = planner.concurrency(
        [(start.timestamp(), end.timestamp()) for start, end, *_ in recent],
        default=LOCAL_ASSUMED_CONCURRENCY,
    )
    running = (
        Task.objects.filter(LOCAL_IN_FLIGHT, state=State.PROCESSING)
        .order_by("processing_started_at", "pk")
        .values_list(*fields, "processing_started_at", "progress")
    )
    queued = (
        Task.objects.filter(LOCAL_IN_FLIGHT, state=State.QUEUED)
        .order_by("created_at", "pk")
        .values_list(*fields, "created_at")[:LOCAL_QUEUE_LIMIT]
    )
    rows, aheads = [], []
    for pk, operation, width, height, started, progress in running:
        started = started.timestamp() if started else now
        took = speed(operation) * width * height / 1e6
        if progress >= PROGRESS_TELLS:
            took = (now - started) * 100 / progress
        rows.append(pk)
        aheads.append(
            planner.Ahead(submitted=started, started=started, ends=started + took + after)
        )
    for pk, operation, width, height, created in queued:
        rows.append(pk)
        aheads.append(
            planner.Ahead(
                submitted=created.timestamp(),
                started=None,
                usual=speed(operation) * width * height / 1e6 + after,
            )
        )
    starts = planner.expected_starts(aheads, now=now, slots=slots)
    found, position = {}, 0
    for pk, ahead, start in zip(rows, aheads, starts, strict=True):
        if ahead.started is None:
            found[pk] = (position, max(start + ahead.usual, now))
            position += 1
        else:
            found[pk] = (None, max(ahead.ends, now))
    return found


def _seconds_per_megapixel(recent: list[tuple]):
    """Per operation, the median seconds per megapixel of the recent runs; of all of them for an
    operation not run lately; LOCAL_SECONDS_PER_MEGAPIXEL before any."""
    by_operation: dict[str, list[float]] = {}
    for start, end, operation, width, height in recent:
        megapixels = width * height / 1e6
        if megapixels > 0 and end > start:
            by_operation.setdefault(operation, []).append(
                (end - start).total_seconds() / megapixels
            )
    every = [value for values in by_operation.values() for value in values]
    overall = median(every) if every else LOCAL_SECONDS_PER_MEGAPIXEL

    def speed(operation: str) -> float:
        values = by_operation.get(operation)
        return median(values) if values else overall

    return speed


def describe(outlook: Outlook | None, now: float | None = None) -> str:
    """The outlook in words: "2 photos ahead · done in about 40 s"."""
    if outlook is None:
        return ""
    parts = []
    if outlook.ahead == 0:
        parts.append("next in line")
    elif outlook.ahead is not None:
        parts.append(f"{outlook.ahead} photo{'s' if outlook.ahead != 1 else ''} ahead")
    left = outlook.seconds_left(now)
    if left is None:
        parts.append("waiting for the team's PicWish key")
    elif left <= 2:
        parts.append("done any moment now")
    else:
        parts.append(f"done in about {_duration(left)}")
    return " · ".join(parts)


def describe_batch(outlooks: list[Outlook | None], now: float | None = None) -> str:
    """When the last of a batch's photos in flight will likely be done, in words ("All photos
    done in about 3 min"); "" when none is in flight. A photo that moved on since it was read
    (no outlook) does not count."""
    known = [outlook for outlook in outlooks if outlook is not None]
    if not known:
        return ""
    if any(outlook.done_at is None for outlook in known):
        return "Waiting for the team's PicWish key"
    last = max(outlook.done_at for outlook in known)
    return "All photos " + describe(Outlook(None, last), now)


def _duration(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} s"
    minutes = -(-seconds // 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
