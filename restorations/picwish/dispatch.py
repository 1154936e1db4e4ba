"""Handing out due PicWish work: each request gets a slot of its key's rate limiter, in the
order the requests are needed (earliest deadline first), so that all processes together stay
under the account's requests per second. Called by the one dispatcher
(`restorations.jobs.dispatch`) every DESK_DISPATCH_INTERVAL seconds."""

import time
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from restorations.jobs import queue
from restorations.jobs.models import Engine, Task
from restorations.jobs.states import State
from restorations.picwish import accounts, leases, planning, ratelimit

# How much later than due a poll after the first may be booked when slots are scarce.
LATER_POLL_SLACK = 0.5
# Slots are booked at least this far ahead: the time a task message takes to reach a worker.
SLOT_LEAD = 0.06


def dispatch(now, *, batch: int) -> int:
    """Hand out the PicWish work that is due, booking each request's slot with the key's limiter.

    The order of booking is the order of sending (`booking_order`), as long as slots start
    within this tick. Returns how many tasks were handed out. Safe to run in several beats
    at once: a task is handed out only by the dispatcher whose conditional claim succeeds (a
    slot booked for a task another dispatcher took is simply left unused).
    """
    # Polls due before the next tick are booked now, for their due time: waiting for the next
    # tick would make them late by half a tick on average.
    next_tick = now + timedelta(seconds=tick_seconds())
    with transaction.atomic():
        due = (
            Task.objects.active()
            .filter(engine=Engine.PICWISH)
            .filter(
                Q(next_poll_at__lte=now)
                | Q(next_poll_at__lte=next_tick, state__gte=0, state__lt=State.WAITING_TO_SEND)
            )
            .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now))
            .exclude(state=State.SENDING)
            .select_related("team")
            .order_by("next_poll_at")
        )
        if connection.features.has_select_for_update_skip_locked:
            # Two dispatchers at once each take rows the other has not locked.
            due = due.select_for_update(skip_locked=True, of=("self",))
        due = list(due[:batch])
    handed_out = 0
    by_key: dict[accounts.Account, list[Task]] = {}
    for task in due:
        if task.state == State.SAVING_RESULT:  # result downloads do not count against the QPS
            handed_out += _hand_out(task, queue.PICWISH_FETCH, None)
            continue
        try:
            account = accounts.account_for(task.team)
        except accounts.KeyUnreadable:  # logged where detected; never sent with another key
            leases.release(task, next_poll_in=accounts.pause_probe().total_seconds())
            continue
        if account is not None:  # without a key the task waits until one is set again
            by_key.setdefault(account, []).append(task)
    limiter = ratelimit.limiter_for_settings()
    for account, tasks in by_key.items():
        for task in booking_order(tasks):
            until_due = (task.next_poll_at - timezone.now()).total_seconds()
            delay = limiter.reserve(
                account.key_id,
                account.qps,
                horizon=tick_seconds(),
                lead=min(tick_seconds(), max(SLOT_LEAD, until_due)),
            )
            if delay is None:
                break  # the key's slots for this tick are booked
            job = queue.PICWISH_SEND if task.state == State.WAITING_TO_SEND else queue.PICWISH_POLL
            handed_out += _hand_out(task, job, time.time() + delay)
    return handed_out


def booking_order(tasks: list[Task]) -> list[Task]:
    """The order in which one key's due tasks (oldest due first) get the key's slots: earliest
    deadline first. With PICWISH_POLL_INTERVAL set, simply oldest due first.

    A poll's deadline is when it is due, plus LATER_POLL_SLACK for a poll after the first: the
    first poll decides how late a quick task is noticed, while the planner books a later one
    that much inside its lag budget (`planner.LATER_LAG_BUDGET`). A send's deadline is when PicWish
    is expected to run out of the team's queued tasks without it (`_send_deadlines`).
    """
    if planning.fixed_interval():
        return tasks
    sends = [t for t in tasks if t.state == State.WAITING_TO_SEND]
    polls = [t for t in tasks if t.state != State.WAITING_TO_SEND]
    deadlines = [(_poll_deadline(task), task) for task in polls]
    if sends:
        deadlines += zip(_send_deadlines(sends[0], len(sends)), sends, strict=True)
    return [task for _, task in sorted(deadlines, key=lambda pair: pair[0])]


def _poll_deadline(task: Task) -> float:
    slack = 0.0 if task.poll_count == 0 else LATER_POLL_SLACK
    return task.next_poll_at.timestamp() + slack


def _send_deadlines(first: Task, count: int) -> list[float]:
    """When each of `count` waiting sends is needed: PicWish finishes about one of the team's
    tasks every usual duration / concurrency seconds, and each finish takes a queued task.
    Two finishes are assumed already past and not yet seen."""
    slots = planning.concurrency_for(first.team)
    queued = planning.in_flight(first.team).count() - slots - 2
    every = planning.durations_for(first).usual / slots
    now = time.time()
    return [now + (queued + n) * every for n in range(count)]


def tick_seconds() -> float:
    return float(settings.CELERY_BEAT_SCHEDULE["dispatch-due-tasks"]["schedule"])


def _hand_out(task: Task, job: str, slot_at: float | None) -> int:
    if task.state == State.WAITING_TO_SEND:
        # The send claims the task itself (100 → 101); only stop other dispatchers meanwhile.
        moved = Task.objects.filter(
            pk=task.pk, state=task.state, next_poll_at=task.next_poll_at
        ).update(next_poll_at=timezone.now() + leases.send_lease_length())
        if moved:
            queue.send(job, task.pk, slot_at)
        return moved
    lease = timezone.now() + leases.lease_length()
    if not leases.claim(task.pk, task.state, lease=lease):
        return 0
    queue.send(job, task.pk, lease.isoformat(), slot_at)
    return 1
