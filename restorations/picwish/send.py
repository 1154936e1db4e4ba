"""Sending a waiting task to PicWish: claim it (100 → 101), take the slot the dispatcher booked,
create the task at PicWish, record the answer.

Every write at the end checks the lease the send holds, as polls and fetches do. A send that
fails for any reason is retried with backoff a bounded number of times (`leases.MAX_FAULTS` in
a row; 429s and a paused key do not count), then the task fails with a reason from the state
table.
A create whose answer comes after its send was taken back is never lost: if the task still
waits, it is adopted with the remote id; otherwise the remote id is recorded in its timeline.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from restorations.engines.formats import EXTENSIONS
from restorations.jobs import transitions
from restorations.jobs.models import EventKind, Task
from restorations.jobs.states import State
from restorations.picwish import accounts, client, leases, planning

log = logging.getLogger(__name__)


def task_deadline() -> timedelta:
    return timedelta(seconds=settings.PICWISH_TASK_DEADLINE)


def send(task_pk: int, slot_at: float | None) -> None:
    """Claim a waiting task and create it at PicWish in the slot booked at `slot_at` (Unix
    time). Safe to run twice: only one claim succeeds."""
    lease = timezone.now() + leases.send_lease_length()
    task = transitions.claim(
        task_pk,
        State.WAITING_TO_SEND,
        State.SENDING,
        attempts=F("attempts") + 1,
        lease_expires_at=lease,
        next_poll_at=lease,
    )
    if task is None:
        return  # already sent, canceled, or claimed by another worker
    try:
        _send(task, slot_at)
    except Exception as exc:  # not an answer from PicWish: retried with a bound, never lost
        log.exception("sending task %s failed", task.public_id)
        _fault(task, f"Sending failed ({type(exc).__name__}: {exc})", final=State.NOT_SENT)


def take_back(task: Task, now) -> None:
    """A send whose lease ran out (its worker died or hung): wait to be sent again, or fail
    once sends have failed leases.MAX_FAULTS times in a row."""
    if task.lease_expires_at is None or task.lease_expires_at <= now:
        _fault(task, "Sending was interrupted", final=State.NOT_SENT)


def _send(task: Task, slot_at: float | None) -> None:
    try:
        account = accounts.account_for(task.team)
    except accounts.KeyUnreadable:
        _back_to_waiting(task, accounts.pause_probe().total_seconds(), "The key is unreadable")
        return
    if account is None:
        transitions.move(
            task,
            State.REJECTED,
            message="No PicWish key is configured any more.",
            where=_held(task),
        )
        return
    if accounts.is_paused(task.team):
        _back_to_waiting(task, accounts.pause_probe().total_seconds())
        return
    try:
        with task.upload.file.open("rb") as image, account.open_client() as http:
            if not account.take_slot(slot_at):
                _back_to_waiting(task, 0)  # the dispatcher sends it when the limiter has room
                return
            created = http.create(
                task.operation,
                task.options,
                image,
                f"{task.upload.public_id}{EXTENSIONS[task.upload.format]}",
            )
    except client.PicWishError as error:
        _send_failed(task, error)
        return
    accounts.key_works(task.team)
    _accepted(task, created)


def _held(task: Task) -> dict:
    """The condition of every write a send makes: it still holds the task."""
    return {"lease_expires_at": task.lease_expires_at}


def _accepted(task: Task, created: client.Created) -> None:
    now = timezone.now()
    fields = {
        "kind": EventKind.SUBMITTED,
        "message": f"PicWish task {created.task_id}",
        "remote_task_id": created.task_id,
        "submitted_at": now,
        "deadline_at": now + task_deadline(),
        "next_poll_at": planning.first_poll_at(task),
        "lease_expires_at": None,
        "last_http_status": 200,
        "last_response": created.raw,
        "fault_count": 0,
    }
    if transitions.move(task, State.QUEUED, expect=State.SENDING, where=_held(task), **fields):
        return
    # The lease ran out while PicWish answered: the task was taken back, and may have been sent
    # again or canceled since. A task still waiting is adopted; otherwise the answer is kept.
    fields["message"] = f"PicWish task {created.task_id}, created after the send was given up"
    adopted = transitions.move(
        task,
        State.QUEUED,
        expect=State.WAITING_TO_SEND,
        where={"lease_expires_at__isnull": True},
        **fields,
    )
    if not adopted:
        log.warning("task %s: late create answer %s kept", task.public_id, created.task_id)
        transitions.note(
            task,
            EventKind.ERROR,
            f"PicWish created task {created.task_id} after this send was given up; the task "
            "had moved on, so PicWish may run and bill the photo twice",
        )


def _back_to_waiting(
    task: Task, seconds: float, message: str = "", kind: str = EventKind.STATE_CHANGED, **fields
) -> bool:
    return transitions.move(
        task,
        State.WAITING_TO_SEND,
        expect=State.SENDING,
        where=_held(task),
        kind=kind,
        message=message,
        lease_expires_at=None,
        next_poll_at=leases.later(seconds),
        **fields,
    )


def _send_failed(task: Task, error: client.PicWishError) -> None:
    fields = {"last_http_status": error.status, "last_response": error.raw[:10_000]}
    if isinstance(error, client.RateLimited):
        _back_to_waiting(
            task,
            leases.backoff(1),
            "PicWish answered 429 to a create; waiting",
            kind=EventKind.RATE_LIMITED,
            **fields,
        )
    elif isinstance(error, client.Unauthorized):
        accounts.pause_key(task.team, error)
        _back_to_waiting(
            task, accounts.pause_probe().total_seconds(), "PicWish refused the key", **fields
        )
    elif isinstance(error, (client.BadRequest, client.TooLarge, client.NotFound)):
        transitions.move(
            task, State.REFUSED, message=refusal(task, error), where=_held(task), **fields
        )
    else:  # server error, unreadable answer, no answer
        lost = isinstance(error, client.TransportError) and error.maybe_received
        message = (
            f"The answer to a create was lost ({error}); PicWish may hold an orphan task"
            if lost
            else f"PicWish failed to create the task: {error}"
        )
        _fault(task, message, final=State.SERVICE_ERROR, **fields)


def refusal(task: Task, error: client.PicWishError) -> str:
    if isinstance(error, client.TooLarge):
        spec = task.spec
        return (
            f"PicWish said the file is too large ({error.message}). {spec.label} accepts up to "
            f"{spec.max_bytes // (1024 * 1024)} MB and {spec.max_width} × {spec.max_height} pixels."
        )
    return f"PicWish refused the request ({error.status}: {error.message})."


def _fault(task: Task, message: str, *, final: int, **fields) -> None:
    """A send that failed: wait with backoff and send again, or fail with `final` once sends
    have failed leases.MAX_FAULTS times in a row."""
    faults = task.fault_count + 1
    if faults >= leases.MAX_FAULTS:
        transitions.move(
            task,
            final,
            expect=State.SENDING,
            where=_held(task),
            message=f"{message} ({faults} times in a row)",
            **fields,
        )
        return
    _back_to_waiting(
        task,
        leases.backoff(faults),
        f"{message}; trying again",
        kind=EventKind.ERROR,
        fault_count=faults,
        **fields,
    )
