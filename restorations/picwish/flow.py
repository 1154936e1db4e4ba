"""Sending tasks to PicWish, polling them and saving their results.

Every request to PicWish takes a slot from the key's rate limiter first, so all processes
together stay under the account's requests per second. Each step claims its task with a
conditional update (a lease whose expiry time doubles as the claim's token), so two workers or
two beats never act on one task at once, and a worker that dies leaves a lease that runs out.
"""

import json
import logging
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from restorations.accounts.models import Team
from restorations.jobs import queue, services
from restorations.jobs.models import Engine, EventKind, Task, TaskEvent
from restorations.jobs.states import State
from restorations.jobs.validation import EXTENSIONS
from restorations.picwish import client, planning, ratelimit

log = logging.getLogger(__name__)

RESULT_URL_LIFETIME = timedelta(hours=1)
# Server errors and lost answers in a row before a task fails as a provider fault.
MAX_FAULTS = 5
# How long a worker waits for a rate-limiter slot before giving its task back.
ACQUIRE_TIMEOUT = 10.0
DISPATCH_BATCH = 200
# A worker this much later than its booked slot books a new one: later, the request could land
# in one PicWish window with the next two (slots are only 5 % wider than 1/QPS).
LATE_FOR_SLOT = 0.02
# How much later than due a poll after the first may be booked when slots are scarce.
LATER_POLL_SLACK = 0.5
# Slots are booked at least this far ahead: the time a task message takes to reach a worker.
SLOT_LEAD = 0.06


def lease_length() -> timedelta:
    return timedelta(seconds=settings.PICWISH_LEASE_SECONDS)


def _pause_probe() -> timedelta:
    """While a key is paused after a 401, each waiting task tries it again this often."""
    return timedelta(seconds=settings.PICWISH_PAUSE_PROBE_SECONDS)


def task_deadline() -> timedelta:
    return timedelta(seconds=settings.PICWISH_TASK_DEADLINE)


@dataclass(frozen=True)
class Account:
    """The PicWish account a team's tasks use: its own key, or the site's."""

    api_key: str
    qps: float

    @property
    def key_id(self) -> str:
        return ratelimit.key_id_for(self.api_key)

    def open_client(self) -> client.PicWishClient:
        return client.PicWishClient(settings.PICWISH_BASE_URL, self.api_key)


def account_for(team: Team) -> Account | None:
    if team.has_own_picwish_key:
        return Account(team.picwish_key, team.picwish_qps)
    if settings.PICWISH_API_KEY:
        return Account(settings.PICWISH_API_KEY, settings.PICWISH_QPS)
    return None


def _backoff(faults: int) -> float:
    """Exponential backoff with jitter: about 1, 2, 4 ... 60 base units at most."""
    base = settings.PICWISH_BACKOFF_SECONDS
    return base * random.uniform(0.5, 1.0) * min(60.0, 2.0 ** max(0, faults - 1))


def _later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


# --- Claims ---------------------------------------------------------------------------------


def _claim(task_pk: int, state: int, *, lease) -> bool:
    """Lease a task in `state` if nobody holds it; the lease's expiry is the claim's token."""
    now = timezone.now()
    return bool(
        Task.objects.filter(pk=task_pk, state=state)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now))
        .update(lease_expires_at=lease, next_poll_at=lease, updated_at=now)
    )


def holding(task_pk: int, lease_token: str) -> Task | None:
    """The task if our lease still holds it (nobody took it over after a timeout)."""
    task = Task.objects.select_related("team", "upload").filter(pk=task_pk).first()
    if task is None or task.lease_expires_at is None:
        return None
    if task.lease_expires_at.isoformat() != lease_token or task.lease_expires_at < timezone.now():
        return None
    return task


def _release(task: Task, *, next_poll_in: float, **fields) -> None:
    """Give the task back to the dispatcher, to be looked at again after `next_poll_in` s."""
    Task.objects.filter(
        pk=task.pk, state=task.state, lease_expires_at=task.lease_expires_at
    ).update(
        lease_expires_at=None,
        next_poll_at=_later(next_poll_in),
        updated_at=timezone.now(),
        **fields,
    )


# --- Dispatch (beat, every second) -----------------------------------------------------------


def dispatch(now) -> int:
    """Hand out the PicWish work that is due, booking each request's slot with the key's limiter.

    The order of booking is the order of sending (`_booking_order`), as long as slots start
    within this tick. Returns how many tasks were handed out. Safe to run in several beats
    at once: a task is handed out only by the dispatcher whose conditional claim succeeds (a
    slot booked for a task another dispatcher took is simply left unused).
    """
    # Polls due before the next tick are booked now, for their due time: waiting for the next
    # tick would make them late by half a tick on average.
    next_tick = now + timedelta(seconds=_tick_seconds())
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
        due = list(due[:DISPATCH_BATCH])
    handed_out = 0
    by_key: dict[Account, list[Task]] = {}
    for task in due:
        if task.state == State.SAVING_RESULT:  # result downloads do not count against the QPS
            handed_out += _hand_out(task, queue.PICWISH_FETCH, None)
            continue
        account = account_for(task.team)
        if account is not None:  # without a key the task waits until one is set again
            by_key.setdefault(account, []).append(task)
    limiter = ratelimit.limiter_for_settings()
    for account, tasks in by_key.items():
        for task in _booking_order(tasks):
            until_due = (task.next_poll_at - timezone.now()).total_seconds()
            delay = limiter.reserve(
                account.key_id,
                account.qps,
                horizon=_tick_seconds(),
                lead=min(_tick_seconds(), max(SLOT_LEAD, until_due)),
            )
            if delay is None:
                break  # the key's slots for this tick are booked
            job = queue.PICWISH_SEND if task.state == State.WAITING_TO_SEND else queue.PICWISH_POLL
            handed_out += _hand_out(task, job, time.time() + delay)
    return handed_out


def _booking_order(tasks: list[Task]) -> list[Task]:
    """The order in which one key's due tasks (oldest due first) get the key's slots: earliest
    deadline first. With PICWISH_POLL_INTERVAL set, simply oldest due first.

    A poll's deadline is when it is due, plus LATER_POLL_SLACK for a poll after the first: the
    first poll decides how late a quick task is noticed, while a later one follows a finishing
    time that progress has already told and has lag to spare. A send's deadline is when PicWish
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


def _tick_seconds() -> float:
    return float(settings.CELERY_BEAT_SCHEDULE["dispatch-due-tasks"]["schedule"])


def _hand_out(task: Task, job: str, slot_at: float | None) -> int:
    if task.state == State.WAITING_TO_SEND:
        # The send claims the task itself (100 → 101); only stop other dispatchers meanwhile.
        moved = Task.objects.filter(
            pk=task.pk, state=task.state, next_poll_at=task.next_poll_at
        ).update(next_poll_at=timezone.now() + lease_length())
        if moved:
            queue.send(job, task.pk, slot_at)
        return moved
    lease = timezone.now() + lease_length()
    if not _claim(task.pk, task.state, lease=lease):
        return 0
    queue.send(job, task.pk, lease.isoformat(), slot_at)
    return 1


# --- Send ------------------------------------------------------------------------------------


def send(task_pk: int, slot_at: float | None) -> None:
    """Claim a waiting task (100 → 101) and create it at PicWish in the booked slot."""
    task = services.claim_for_sending(task_pk, lease_length())
    if task is not None:  # else already sent, canceled, or claimed by another worker
        _send(task, slot_at)


def _send(task: Task, slot_at: float | None) -> None:
    account = account_for(task.team)
    if account is None:
        services.fail(task, State.REJECTED, "No PicWish key is configured any more.")
        return
    if task.team.key_paused_at and task.team.key_paused_at > timezone.now() - _pause_probe():
        _back_to_waiting(task, _pause_probe().total_seconds())
        return
    try:
        with task.upload.file.open("rb") as image, account.open_client() as http:
            if not _take_slot(account, slot_at):
                _back_to_waiting(task, 0)  # the dispatcher sends it when the limiter has room
                return
            created = http.create(
                task.operation,
                task.options,
                image,
                f"{task.upload.public_id}{EXTENSIONS[task.upload.format]}",
            )
    except client.PicWishError as error:
        _send_failed(task, account, error)
        return
    now = timezone.now()
    _key_works(task.team)
    services.move(
        task,
        State.QUEUED,
        expect=State.SENDING,
        kind=EventKind.SUBMITTED,
        message=f"PicWish task {created.task_id}",
        remote_task_id=created.task_id,
        submitted_at=now,
        deadline_at=now + task_deadline(),
        next_poll_at=planning.first_poll_at(task),
        lease_expires_at=None,
        last_http_status=200,
        last_response=created.raw,
        fault_count=0,
    )


def _take_slot(account: Account, slot_at: float | None) -> bool:
    """The right to send one request now: the slot the dispatcher booked (`slot_at`, Unix
    time). Without one (a message from elsewhere) the task goes back to the dispatcher.

    A request sent later than its booked slot could crowd the next one into PicWish's window,
    so a worker that comes too late books a new slot instead. Callers take the slot with the
    client built and the file open, so the request leaves right after it.
    """
    if slot_at is None:
        return False
    limiter = ratelimit.limiter_for_settings()
    wait = slot_at - time.time()
    if wait > 0:
        time.sleep(wait)
    late = time.time() - slot_at  # also after the sleep: a busy machine may oversleep
    if late > LATE_FOR_SLOT:
        return limiter.acquire(account.key_id, account.qps, timeout=ACQUIRE_TIMEOUT)
    return True


def _back_to_waiting(task: Task, seconds: float, **fields) -> None:
    Task.objects.filter(pk=task.pk, state=State.SENDING).update(
        state=State.WAITING_TO_SEND,
        lease_expires_at=None,
        next_poll_at=_later(seconds),
        updated_at=timezone.now(),
        **fields,
    )


def _send_failed(task: Task, account: Account, error: client.PicWishError) -> None:
    status = error.status
    fields = {"last_http_status": status, "last_response": error.raw[:10_000]}
    if isinstance(error, client.RateLimited):
        _record(task, EventKind.RATE_LIMITED, "PicWish answered 429 to a create; waiting")
        _back_to_waiting(task, _backoff(1), **fields)
    elif isinstance(error, client.Unauthorized):
        _pause_key(task.team, error)
        _back_to_waiting(task, _pause_probe().total_seconds(), **fields)
    elif isinstance(error, (client.BadRequest, client.TooLarge, client.NotFound)):
        services.fail(task, State.REFUSED, _refusal(task, error), expect=State.SENDING)
        Task.objects.filter(pk=task.pk).update(**fields)
    else:  # server error, unreadable answer, no answer
        lost = isinstance(error, client.TransportError) and error.maybe_received
        message = (
            f"The answer to a create was lost ({error}); PicWish may hold an orphan task"
            if lost
            else f"PicWish failed to create the task: {error}"
        )
        _fault(task, message, expect=State.SENDING, back_to=State.WAITING_TO_SEND, **fields)


def _refusal(task: Task, error: client.PicWishError) -> str:
    if isinstance(error, client.TooLarge):
        spec = task.spec
        return (
            f"PicWish said the file is too large ({error.message}). {spec.label} accepts up to "
            f"{spec.max_bytes // (1024 * 1024)} MB and {spec.max_width} × {spec.max_height} pixels."
        )
    return f"PicWish refused the request ({error.status}: {error.message})."


# --- Poll ------------------------------------------------------------------------------------


def poll(task_pk: int, lease_token: str, slot_at: float) -> None:
    task = holding(task_pk, lease_token)
    if task is not None:
        _poll(task, slot_at)


def _poll(task: Task, slot_at: float) -> None:
    account = account_for(task.team)
    if account is None:
        _release(task, next_poll_in=_pause_probe().total_seconds())
        return
    if task.deadline_at and timezone.now() > task.deadline_at:
        services.fail(task, State.DEADLINE_PASSED, expect=task.state)
        return
    try:
        with account.open_client() as http:
            if not _take_slot(account, slot_at):
                _release(task, next_poll_in=0)
                return
            polled = http.poll(task.operation, task.remote_task_id)
    except client.PicWishError as error:
        _poll_failed(task, error)
        return
    Task.objects.filter(pk=task.pk).update(poll_count=task.poll_count + 1)
    task.poll_count += 1
    _key_works(task.team)
    _apply(task, polled)


def _apply(task: Task, polled: client.Polled) -> None:
    common = {
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
        expires = (polled.completed_at or timezone.now()) + RESULT_URL_LIFETIME
        lease = timezone.now() + lease_length()
        if services.move(
            task,
            State.SAVING_RESULT,
            progress=100,
            result_url_expires_at=expires,
            **{**common, "lease_expires_at": lease, "next_poll_at": lease},
        ):
            planning.replan_after_finish(task)
            queue.send_on_commit(queue.PICWISH_FETCH, task.pk, lease.isoformat(), None)
    elif polled.state < 0:
        if services.move(task, polled.state, message=polled.state_detail, **common):
            planning.replan_after_finish(task)
    else:
        delay = planning.next_poll_delay(task, polled)
        fields = {**common, "progress": polled.progress, "next_poll_at": _later(delay)}
        if polled.state != task.state:
            services.move(task, polled.state, **fields)
        else:
            Task.objects.filter(pk=task.pk, state=task.state).update(
                updated_at=timezone.now(), **fields
            )


def _poll_failed(task: Task, error: client.PicWishError) -> None:
    fields = {"last_http_status": error.status, "last_response": error.raw[:10_000]}
    if isinstance(error, client.RateLimited):
        _record(task, EventKind.RATE_LIMITED, "PicWish answered 429 to a poll; waiting")
        _release(task, next_poll_in=_backoff(1), **fields)
    elif isinstance(error, client.Unauthorized):
        _pause_key(task.team, error)
        _release(task, next_poll_in=_pause_probe().total_seconds(), **fields)
    elif isinstance(error, client.NotFound):
        services.fail(
            task, State.UPSTREAM_LOST, f"PicWish answered 404: {error.message}", expect=task.state
        )
    elif isinstance(error, (client.BadRequest, client.TooLarge)):
        services.fail(task, State.REFUSED, _refusal(task, error), expect=task.state)
    else:
        _fault(
            task,
            f"Polling PicWish failed: {error}",
            expect=task.state,
            back_to=task.state,
            **fields,
        )


# --- Fetch -----------------------------------------------------------------------------------


def fetch(task_pk: int, lease_token: str) -> None:
    task = holding(task_pk, lease_token)
    if task is not None and task.state == State.SAVING_RESULT:
        _fetch(task)


def _fetch(task: Task) -> None:
    """Copy the result into our storage, then mark the task completed (102 → 1)."""
    try:
        data = json.loads(task.last_response)["data"]
        image, return_type = (
            data["image"] if "image" in data else data["file"],
            int(data.get("return_type") or client.URL_RESULT),
        )
    except (ValueError, KeyError, TypeError):
        services.fail(
            task,
            State.EMPTY_RESULT,
            "PicWish reported success without a result.",
            expect=State.SAVING_RESULT,
        )
        return
    account = account_for(task.team) or Account("", 1.0)
    with tempfile.TemporaryFile() as buffer:
        try:
            with account.open_client() as http:
                downloaded = http.download(image, return_type, buffer)
        except client.PicWishError as error:
            _fetch_failed(task, error)
            return
        buffer.seek(0)
        try:
            with Image.open(buffer) as result:
                width, height, fmt = result.width, result.height, result.format
        except (UnidentifiedImageError, OSError):
            services.fail(
                task,
                State.EMPTY_RESULT,
                "PicWish's result is not an image.",
                expect=State.SAVING_RESULT,
            )
            return
        buffer.seek(0)
        services.store_result(
            task,
            File(buffer),
            extension=EXTENSIONS.get(fmt, ".bin"),
            sha256=downloaded.sha256,
            size=downloaded.size,
            width=width,
            height=height,
            fmt=fmt,
        )


def _fetch_failed(task: Task, error: client.PicWishError) -> None:
    expired = task.result_url_expires_at and timezone.now() >= task.result_url_expires_at
    if isinstance(error, client.NotFound) or expired:
        services.fail(
            task,
            State.RESULT_EXPIRED,
            f"The result could not be fetched: {error}",
            expect=State.SAVING_RESULT,
        )
        return
    _record(task, EventKind.ERROR, f"Fetching the result failed: {error}; trying again")
    _release(task, next_poll_in=_backoff(task.fault_count + 1), fault_count=task.fault_count + 1)


# --- Shared -------------------------------------------------------------------------------


def _fault(task: Task, message: str, *, expect: int, back_to: int, **fields) -> None:
    """A server error or a lost answer: retry with backoff, a bounded number of times."""
    faults = task.fault_count + 1
    if faults >= MAX_FAULTS:
        services.fail(
            task, State.SERVICE_ERROR, f"{message} ({faults} times in a row)", expect=expect
        )
        return
    _record(task, EventKind.ERROR, message)
    Task.objects.filter(pk=task.pk, state=expect).update(
        state=back_to,
        fault_count=faults,
        lease_expires_at=None,
        next_poll_at=_later(_backoff(faults)),
        updated_at=timezone.now(),
        **fields,
    )


def _record(task: Task, kind: str, message: str) -> None:
    TaskEvent.objects.create(
        task=task, kind=kind, from_state=task.state, to_state=task.state, message=message
    )


def _pause_key(team: Team, error: client.PicWishError) -> None:
    paused = Team.objects.filter(pk=team.pk, key_paused_at__isnull=True).update(
        key_paused_at=timezone.now()
    )
    if paused:
        log.warning(
            "PicWish refused the key of team %s (401: %s); its tasks wait", team.slug, error.message
        )


def _key_works(team: Team) -> None:
    if team.key_paused_at:
        Team.objects.filter(pk=team.pk).update(key_paused_at=None)
        log.info("PicWish accepts the key of team %s again", team.slug)
