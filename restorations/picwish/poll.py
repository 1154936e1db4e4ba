"""Polling a PicWish task: take the booked slot, ask PicWish for the task's state, record what
changed, and plan the next poll (`planning`). A task PicWish reports done hands its result's
URL, return type and reported size to the fetch as columns; every write checks the lease the
poll holds."""

from datetime import timedelta

from django.utils import timezone

from restorations.jobs import queue, states, transitions
from restorations.jobs.models import EventKind, Task
from restorations.jobs.states import State
from restorations.picwish import accounts, client, leases, planning
from restorations.picwish.send import refusal

RESULT_URL_LIFETIME = timedelta(hours=1)


def poll(task_pk: int, lease_token: str, slot_at: float) -> None:
    task = leases.holding(task_pk, lease_token)
    if task is not None:
        _poll(task, slot_at)


def _held(task: Task) -> dict:
    return {"lease_expires_at": task.lease_expires_at}


def _poll(task: Task, slot_at: float) -> None:
    try:
        account = accounts.account_for(task.team)
    except accounts.KeyUnreadable:
        account = None
    if account is None:
        leases.release(task, next_poll_in=accounts.pause_probe().total_seconds())
        return
    if task.deadline_at and timezone.now() > task.deadline_at:
        transitions.move(task, State.DEADLINE_PASSED, where=_held(task))
        return
    try:
        with account.open_client() as http:
            if not account.take_slot(slot_at):
                leases.release(task, next_poll_in=0)
                return
            polled = http.poll(task.operation, task.remote_task_id)
    except client.PicWishError as error:
        _poll_failed(task, error)
        return
    Task.objects.filter(pk=task.pk).update(poll_count=task.poll_count + 1)
    task.poll_count += 1
    accounts.key_works(task.team)
    _apply(task, polled)


def _apply(task: Task, polled: client.Polled) -> None:
    common = {
        "cause": transitions.Cause.UPSTREAM,
        "where": _held(task),
        "state_detail": polled.state_detail,
        "upstream_created_at": polled.created_at,
        "upstream_processed_at": polled.processed_at,
        "upstream_completed_at": polled.completed_at,
        **planning.processing_times(task, polled),
        "last_http_status": 200,
        "last_response": polled.raw[:100_000],
        "fault_count": 0,
        "lease_expires_at": None,
    }
    if polled.state == State.COMPLETED:
        _completed(task, polled, common)
    elif states.is_failure(polled.state):
        if transitions.move(task, polled.state, message=polled.state_detail, **common):
            planning.replan_after_finish(task)
    else:
        delay = planning.next_poll_delay(task, polled)
        fields = {**common, "progress": polled.progress, "next_poll_at": leases.later(delay)}
        if polled.state != task.state:
            transitions.move(task, polled.state, **fields)
        else:  # no change of state: only what the poll saw and when to poll next
            del fields["cause"], fields["where"]
            Task.objects.filter(pk=task.pk, state=task.state, **_held(task)).update(
                updated_at=timezone.now(), **fields
            )


def _completed(task: Task, polled: client.Polled, common: dict) -> None:
    if not polled.image:
        transitions.move(
            task, State.EMPTY_RESULT, message="PicWish reported success without a result.", **common
        )
        planning.replan_after_finish(task)
        return
    lease = timezone.now() + leases.lease_length()
    moved = transitions.move(
        task,
        State.SAVING_RESULT,
        progress=100,
        upstream_result=polled.image,
        upstream_result_type=polled.return_type,
        upstream_result_width=polled.image_width,
        upstream_result_height=polled.image_height,
        result_url_expires_at=(polled.completed_at or timezone.now()) + RESULT_URL_LIFETIME,
        **{**common, "lease_expires_at": lease, "next_poll_at": lease},
    )
    if moved:
        planning.replan_after_finish(task)
        queue.send_on_commit(queue.PICWISH_FETCH, task.pk, lease.isoformat(), None)


def _poll_failed(task: Task, error: client.PicWishError) -> None:
    fields = {"last_http_status": error.status, "last_response": error.raw[:10_000]}
    if isinstance(error, client.RateLimited):
        transitions.note(task, EventKind.RATE_LIMITED, "PicWish answered 429 to a poll; waiting")
        leases.release(task, next_poll_in=leases.backoff(1), **fields)
    elif isinstance(error, client.Unauthorized):
        accounts.pause_key(task.team, error)
        leases.release(task, next_poll_in=accounts.pause_probe().total_seconds(), **fields)
    elif isinstance(error, client.NotFound):
        transitions.move(
            task,
            State.UPSTREAM_LOST,
            message=f"PicWish answered 404: {error.message}",
            where=_held(task),
            **fields,
        )
    elif isinstance(error, (client.BadRequest, client.TooLarge)):
        transitions.move(
            task, State.REFUSED, message=refusal(task, error), where=_held(task), **fields
        )
    else:
        _fault(task, f"Polling PicWish failed: {error}", **fields)


def _fault(task: Task, message: str, **fields) -> None:
    """A server error or a lost answer: poll again with backoff, a bounded number of times."""
    faults = task.fault_count + 1
    if faults >= leases.MAX_FAULTS:
        transitions.move(
            task,
            State.SERVICE_ERROR,
            message=f"{message} ({faults} times in a row)",
            where=_held(task),
            **fields,
        )
        return
    transitions.note(task, EventKind.ERROR, message)
    leases.release(task, next_poll_in=leases.backoff(faults), fault_count=faults, **fields)
