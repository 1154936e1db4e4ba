"""The poll planner's view of the database: what a team's PicWish tasks have shown so far.

`planner` holds the pure arithmetic; this module feeds it the team's recent processing times and
its queue at PicWish, and turns its answers into the times stored on Task rows.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.utils import timezone

from restorations.accounts.models import Team
from restorations.jobs.models import FINISHED_AT_PICWISH, IN_FLIGHT_AT_PICWISH, Task
from restorations.jobs.operations import spec_for
from restorations.jobs.states import is_final
from restorations.picwish import client, planner

# How many of a team's in-flight tasks the poll planner replays (oldest first).
QUEUE_REPLAY_LIMIT = 300
# How many recently finished tasks give the processing times and the measured concurrency.
RECENT = 40
# How many of its reports while processing a task keeps for the planner (the latest).
MAX_REPORTS_KEPT = 20


def _later(seconds: float) -> datetime:
    return timezone.now() + timedelta(seconds=seconds)


def finished(team: Team):
    """The team's tasks PicWish has finished processing (its completion stamp is set only then),
    with the planner's estimates of their processing times. The partial indexes
    `task_finished_op_recent` and `task_finished_recent` have exactly this condition: every
    query built on it must keep it whole for them to serve it."""
    return Task.objects.filter(FINISHED_AT_PICWISH, team=team)


def recently_finished(team: Team, operation: str | None = None):
    """The team's finished tasks, of one operation or of all, most recently finished first:
    the recent processing times' query (the partial indexes `task_finished_op_recent` and
    `task_finished_recent` serve it)."""
    tasks = finished(team)
    if operation is not None:
        tasks = tasks.filter(operation=operation)
    return tasks.order_by("-processing_ends_at")


def recent(team: Team, operation: str | None, *fields: str) -> list[tuple]:
    """The team's RECENT most recently finished tasks: their processing start and end (Unix
    times) and `fields`."""
    rows = recently_finished(team, operation).values_list(
        "processing_started_at", "processing_ends_at", *fields
    )[:RECENT]
    return [(start.timestamp(), end.timestamp(), *rest) for start, end, *rest in rows]


def recent_processing(team: Team, operation: str | None = None) -> list[tuple[float, float]]:
    """(start, end) of the team's RECENT most recently finished tasks, as Unix times."""
    return [(start, end) for start, end in recent(team, operation)]


def durations_for(task: Task) -> planner.Durations:
    """What the team's recently finished tasks of `task`'s operation showed the planner."""
    return durations_of(task.team, task.operation)


def durations_of(team: Team, operation: str) -> planner.Durations:
    """What the team's recently finished tasks of one operation showed the planner: their
    processing times, and their polls' reports at their shares of those times."""
    samples, seen = [], []
    for start, end, reports in recent(team, operation, "progress_seen"):
        if end <= start:
            continue
        length = end - start
        samples.append(length)
        margin = planner.SHARE_ERROR / length
        seen += [
            planner.Seen(
                planner.stage_of(state),
                progress,
                min(1.0, max(0.0, (at - start) / length)),
                margin,
            )
            for at, state, progress in reports
        ]
    return planner.Durations(tuple(samples), spec_for(operation).typical_seconds, tuple(seen))


def concurrency_for(team: Team) -> int:
    return concurrency_from(recent_processing(team))


def concurrency_from(spans: list[tuple[float, float]]) -> int:
    """How many tasks the account runs at once, from its recent (start, end) times."""
    return planner.concurrency(spans, default=settings.PICWISH_ASSUMED_CONCURRENCY)


def in_flight(team: Team):
    """The team's tasks that PicWish holds and has not finished, as far as we know. The partial
    index `task_in_flight` has exactly this condition."""
    return Task.objects.filter(IN_FLIGHT_AT_PICWISH, team=team)


def fixed_interval() -> float | None:
    """PICWISH_POLL_INTERVAL set: poll every task at that fixed interval, first due first
    served, instead of planning (the naive strategy, kept for comparison in the benchmark)."""
    return settings.PICWISH_POLL_INTERVAL


REPLAY_FIELDS = ("pk", "submitted_at", "processing_started_at", "processing_ends_at", "operation")


def held_by_picwish(team: Team):
    """The queue replay's first query: the team's sent tasks PicWish holds, oldest first."""
    return in_flight(team).filter(submitted_at__isnull=False).order_by("submitted_at", "pk")


def finished_since(team: Team, moment: datetime):
    """The queue replay's second query: the team's tasks that finished after `moment` (when the
    oldest task PicWish holds was sent), whose slots a held task may have taken, in the order
    they finished (the partial index `task_finished_recent` serves it; without an order of its
    own the query would sort by the model's -created_at)."""
    return (
        finished(team)
        .filter(submitted_at__isnull=False, processing_ends_at__gt=moment)
        .order_by("processing_ends_at")
    )


def queue_of(
    team: Team, usual_of: Callable[[str], float] | None = None
) -> list[tuple[int, planner.Ahead]]:
    """The team's tasks PicWish holds, in the order they were sent, as the planner sees them;
    with the finished ones whose slot a task still held may have taken (those that finished
    after the oldest of them was sent). `usual_of(operation)`, when given, is each task's usual
    duration in the replay (else the replay's default)."""
    held = list(held_by_picwish(team).values_list(*REPLAY_FIELDS)[:QUEUE_REPLAY_LIMIT])
    if not held:
        return []
    done = finished_since(team, held[0][1])
    rows = [(row, False) for row in held]
    rows += [(row, True) for row in done.values_list(*REPLAY_FIELDS)[:QUEUE_REPLAY_LIMIT]]
    rows.sort(key=lambda pair: (pair[0][1], pair[0][0]))
    return [
        (
            pk,
            planner.Ahead(
                submitted=submitted.timestamp(),
                started=started.timestamp() if started else None,
                ends=ends.timestamp() if ends else None,
                finished=done,
                usual=usual_of(operation) if usual_of else None,
            ),
        )
        for (pk, submitted, started, ends, operation), done in rows
    ]


def expected_start(task: Task) -> float:
    """When PicWish will likely start `task`; a task not yet sent goes at the end of the queue."""
    now = time.time()
    queue = [ahead for pk, ahead in queue_of(task.team) if pk != task.pk]
    if task.submitted_at:
        queue = [a for a in queue if a.submitted < task.submitted_at.timestamp()]
    queue.append(
        planner.Ahead(
            submitted=task.submitted_at.timestamp() if task.submitted_at else now, started=None
        )
    )
    starts = planner.expected_starts(
        queue, now=now, slots=concurrency_for(task.team), durations=durations_for(task)
    )
    return starts[-1]


def replan_queued(team: Team, durations: planner.Durations) -> None:
    """After news from PicWish, move the first poll of each task believed queued to its
    expected start plus the first check."""
    queue = queue_of(team)
    now = time.time()
    starts = planner.expected_starts(
        [ahead for _, ahead in queue], now=now, slots=concurrency_for(team), durations=durations
    )
    for (pk, ahead), start in zip(queue, starts, strict=True):
        if ahead.started is None and not ahead.finished:
            Task.objects.filter(
                pk=pk,
                lease_expires_at__isnull=True,
                upstream_processed_at__isnull=True,
                state__in=planner.QUEUED_STATES,
                poll_count=0,
            ).update(next_poll_at=at(planner.first_poll_at(start, durations)))


def first_poll_at(task: Task) -> datetime:
    if fixed_interval():
        return _later(fixed_interval())
    return at(planner.first_poll_at(expected_start(task), durations_for(task)))


def processing_times(task: Task, polled: client.Polled) -> dict:
    """The planner's estimates of when PicWish started and finishes (or finished) processing
    `task`, from its whole-second stamps, its report and when the poll was answered; with the
    report added to the task's reports seen while processing. Set on `task` too, and returned
    as fields to save."""
    if polled.processed_at is None:
        return {}
    now = time.time()
    if task.processing_started_at and task.upstream_processed_at == polled.processed_at:
        started = task.processing_started_at.timestamp()  # estimated at the first sight of it
    else:
        started = likely_start(task, polled)
    fields = {}
    if is_final(polled.state):
        expected = task.processing_ends_at.timestamp() if task.processing_ends_at else None
        completed = (polled.completed_at or timezone.now()).timestamp()
        ends = max(started, planner.likely_end(completed, now, expected))
    else:
        stage = planner.stage_of(polled.state)
        ends = planner.expected_end(started, now, stage, polled.progress, durations_for(task))
        task.progress_seen = [*task.progress_seen, [now, polled.state, polled.progress]][
            -MAX_REPORTS_KEPT:
        ]
        fields["progress_seen"] = task.progress_seen
    task.processing_started_at = at(started)
    task.processing_ends_at = at(ends) if ends is not None else None
    return {
        "processing_started_at": task.processing_started_at,
        "processing_ends_at": task.processing_ends_at,
        **fields,
    }


def likely_start(task: Task, polled: client.Polled) -> float:
    """When PicWish started `task`, first seen started: on arrival if it reports the start in
    the second it reports the task created, else when the queue's replay says a slot freed."""
    submitted = (task.submitted_at or polled.processed_at).timestamp()
    on_arrival = polled.created_at and int(polled.created_at.timestamp()) == int(
        polled.processed_at.timestamp()
    )
    expected = submitted if on_arrival else expected_start(task)
    return planner.likely_start(polled.processed_at.timestamp(), submitted, expected)


def at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, tz=UTC)


def next_poll_delay(task: Task, polled: client.Polled) -> float:
    if fixed_interval():
        return fixed_interval()
    elapsed, queued_until = None, 0.0
    if task.processing_started_at is not None:
        elapsed = max(0.0, time.time() - task.processing_started_at.timestamp())
    elif polled.state in planner.QUEUED_STATES:
        queued_until = max(0.0, expected_start(task) - time.time())
    return planner.next_poll(
        state=polled.state,
        progress=polled.progress,
        elapsed_processing=elapsed,
        durations=durations_for(task),
        queued_until=queued_until,
    )


def replan_after_finish(task: Task) -> None:
    """`task` finished and freed a slot at PicWish: re-plan the first polls of the team's queued
    tasks."""
    if not fixed_interval():
        replan_queued(task.team, durations_for(task))
