"""Celery tasks of the job pipeline. Each takes a primary key, claims its work with a conditional
update and is safe to run twice (acks_late redelivers a task whose worker died)."""

import logging
from datetime import timedelta

from celery import shared_task
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from restorations.jobs import picwish_flow, services
from restorations.jobs.models import Engine, EventKind, Task
from restorations.jobs.states import State

log = logging.getLogger(__name__)

SEND_LEASE = timedelta(seconds=60)
# A local task waits in its queue; if nothing has started it by then, it is queued again.
LOCAL_QUEUE_WATCHDOG = timedelta(minutes=15)
# How long one local run may hold a task without reporting progress before it is taken back.
LOCAL_RUN_LEASE = timedelta(minutes=6)
# A local task that lost its worker this many times fails instead of crashing workers forever.
LOCAL_MAX_RUNS = 3
DISPATCH_BATCH = 200


@shared_task
def send_task(task_pk: int, slot_at: float | None = None) -> None:
    """Send a waiting task to its engine; `slot_at` is the rate-limiter slot the dispatcher
    booked for it (Unix time), if any."""
    task = services.claim_for_sending(task_pk, SEND_LEASE)
    if task is None:
        return  # already sent, canceled, or claimed by another worker
    if task.engine == Engine.LOCAL:
        _queue_locally(task)
    else:
        picwish_flow.send(task, slot_at)


@shared_task
def poll_task(task_pk: int, lease: str, slot_at: float) -> None:
    task = picwish_flow.holding(task_pk, lease)
    if task is not None:
        picwish_flow.poll(task, slot_at)


@shared_task
def fetch_result(task_pk: int, lease: str, slot_at: float | None = None) -> None:
    task = picwish_flow.holding(task_pk, lease)
    if task is not None and task.state == State.SAVING_RESULT:
        picwish_flow.fetch(task)


def _queue_locally(task: Task) -> None:
    from restorations.engines.tasks import run_local_engine

    now = timezone.now()
    moved = services.move(
        task,
        State.QUEUED,
        expect=State.SENDING,
        kind=EventKind.SUBMITTED,
        message="Queued on the built-in engine",
        submitted_at=now,
        next_poll_at=now + LOCAL_QUEUE_WATCHDOG,
        lease_expires_at=None,
    )
    if moved:
        transaction.on_commit(lambda: run_local_engine.delay(task.pk))


@shared_task
def dispatch_due() -> int:
    """Run by beat about every second: act on active tasks whose next_poll_at is due."""
    now = timezone.now()
    due = list(
        Task.objects.active()
        .filter(next_poll_at__lte=now)
        .filter(Q(engine=Engine.LOCAL) | Q(state=State.SENDING))
        .order_by("next_poll_at")
        .values_list("pk", "engine", "state")[:DISPATCH_BATCH]
    )
    for pk, engine, state in due:
        _dispatch(pk, engine, state, now)
    return len(due) + picwish_flow.dispatch(now)


def _dispatch(pk: int, engine: str, state: int, now) -> None:
    from restorations.engines.tasks import run_local_engine

    if state == State.WAITING_TO_SEND:
        Task.objects.filter(pk=pk, state=state).update(next_poll_at=now + SEND_LEASE)
        send_task.delay(pk)
    elif state == State.SENDING:
        _take_back(pk, state, State.WAITING_TO_SEND, now, "Sending was interrupted; sending again")
    elif state in (State.QUEUED, State.PROCESSING):
        task = Task.objects.get(pk=pk)
        if task.attempts >= LOCAL_MAX_RUNS and state == State.PROCESSING:
            services.fail(
                task,
                State.FAILED,
                "The built-in engine stopped while working on this photo several times.",
                expect=state,
            )
            return
        if _take_back(
            pk,
            state,
            State.QUEUED,
            now,
            "The built-in engine did not finish; queued again",
            next_poll_at=now + LOCAL_QUEUE_WATCHDOG,
        ):
            run_local_engine.delay(pk)


def _take_back(pk, state, to_state, now, message, **fields) -> bool:
    """Return a task whose lease ran out (its worker died) to an earlier state."""
    task = (
        Task.objects.filter(pk=pk)
        .filter(Q(lease_expires_at__lte=now) | Q(lease_expires_at__isnull=True))
        .first()
    )
    if task is None or task.state != state:
        return False
    fields.setdefault("next_poll_at", now)
    return services.move(
        task,
        to_state,
        expect=state,
        kind=EventKind.ERROR,
        message=message,
        lease_expires_at=None,
        **fields,
    )
