"""What happens to tasks: creation, state changes, cancel and retry.

Views, the API, management commands and Celery tasks all go through these functions, so every
state change is a conditional update and every change leaves a TaskEvent.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from restorations.jobs import queue, states
from restorations.jobs.models import Engine, EventKind, Task, TaskEvent, Upload
from restorations.jobs.operations import clean_options, spec_for
from restorations.jobs.states import State
from restorations.jobs.validation import CheckedImage, check_image, clean_file_name

log = logging.getLogger(__name__)

# A local task waits in its queue; if nothing has started it by then, it is queued again.
QUEUE_WATCHDOG = timedelta(minutes=15)
# Transient failures are retried automatically at most this many times per original task.
MAX_AUTOMATIC_RETRIES = 2


def engine_for(team) -> str:
    """PicWish when the team or the site has a key; otherwise the built-in engine."""
    if team.has_own_picwish_key or settings.PICWISH_API_KEY:
        return Engine.PICWISH
    return Engine.LOCAL


def create_task(
    *,
    team,
    user,
    file,
    file_name: str,
    operation: str,
    options: dict,
    checked: CheckedImage | None = None,
) -> Task:
    """Validate, store the original and create its task; raises ValidationError on bad input.

    `checked` skips a second read when the caller has already checked this file. Nothing is
    stored unless everything is valid, and a stored file is removed again if the database
    refuses the rows.
    """
    cleaned_options = clean_options(operation, options)
    checked = checked or check_image(file, spec_for(operation))
    upload = Upload(
        team=team,
        uploaded_by=user,
        original_name=clean_file_name(file_name),
        sha256=checked.sha256,
        bytes=checked.bytes,
        width=checked.width,
        height=checked.height,
        format=checked.format,
    )
    upload.file.save(f"original{checked.extension}", file, save=False)
    try:
        with transaction.atomic():
            upload.save()
            engine = engine_for(team)
            task = Task.objects.create(
                upload=upload,
                team=team,
                created_by=user,
                operation=operation,
                options=cleaned_options,
                engine=engine,
                **_first_fields(engine),
            )
            TaskEvent.objects.create(
                task=task, kind=EventKind.CREATED, to_state=task.state, actor=user
            )
            enqueue(task)
    except BaseException:
        upload.file.delete(save=False)
        raise
    return task


def create_tasks(*, team, user, items, operation: str, options: dict) -> list[Task]:
    """All tasks or none: `items` yields (file, file name, CheckedImage) for checked files. If
    one fails, the rows roll back and every file already stored is removed again."""
    created: list[Task] = []
    try:
        with transaction.atomic():
            for file, file_name, checked in items:
                created.append(
                    create_task(
                        team=team,
                        user=user,
                        file=file,
                        file_name=file_name,
                        operation=operation,
                        options=options,
                        checked=checked,
                    )
                )
    except BaseException:
        for task in created:
            task.upload.file.delete(save=False)
        raise
    return created


def resume_waiting_tasks(team) -> int:
    """After a team's key changed: its waiting tasks are sent at once, not at their next try."""
    return Task.objects.filter(
        team=team, state=State.WAITING_TO_SEND, lease_expires_at__isnull=True
    ).update(next_poll_at=timezone.now())


def _first_fields(engine: str) -> dict:
    """A PicWish task waits for the dispatcher, which books its create a slot with the key's
    limiter in the key's order of need, and is due at once. A local task is queued on the
    built-in engine at once (its message leaves on commit) and is due for the dispatcher only
    if that message is lost."""
    now = timezone.now()
    if engine == Engine.LOCAL:
        return {"state": State.QUEUED, "submitted_at": now, "next_poll_at": now + QUEUE_WATCHDOG}
    return {"state": State.WAITING_TO_SEND, "next_poll_at": now}


def enqueue(task: Task) -> None:
    if task.engine == Engine.LOCAL:
        queue.send_on_commit(queue.RUN_LOCAL, task.pk)


def move(
    task: Task,
    to_state: int,
    *,
    expect: int | None = None,
    kind: str = EventKind.STATE_CHANGED,
    message: str = "",
    actor=None,
    **fields,
) -> bool:
    """Change the state only if it is still `expect` (default: what `task` holds).

    Returns False, changing nothing, when another process changed the task first. Final states
    also stamp finished_at and, for failures, the failure code and message.
    """
    expect = task.state if expect is None else expect
    now = timezone.now()
    fields["updated_at"] = now
    if states.is_final(to_state):
        fields.setdefault("finished_at", now)
        fields.setdefault("next_poll_at", None)
        fields.setdefault("lease_expires_at", None)
        if to_state < 0:
            fields.setdefault("failure_code", to_state)
            fields.setdefault("failure_message", message or states.describe(to_state).reason)
    with transaction.atomic():
        changed = Task.objects.filter(pk=task.pk, state=expect).update(state=to_state, **fields)
        if not changed:
            return False
        TaskEvent.objects.create(
            task=task,
            kind=kind,
            from_state=expect,
            to_state=to_state,
            message=message,
            actor=actor,
        )
        if to_state < 0 and kind != EventKind.CANCELED:
            _retry_automatically_if_transient(task, to_state)
    task.state = to_state
    for name, value in fields.items():
        setattr(task, name, value)
    return True


def fail(task: Task, code: int, message: str = "", *, expect: int | None = None) -> bool:
    log.info("task %s failed with %s: %s", task.public_id, code, message)
    return move(task, code, expect=expect, message=message)


def cancel(task: Task, user) -> bool:
    """Local cancel (PicWish has none): the task ends at -104 and a late result is ignored."""
    while not task.is_final:
        if move(task, State.CANCELED, kind=EventKind.CANCELED, actor=user):
            return True
        task.refresh_from_db(fields=["state"])
    return False


def can_retry(task: Task) -> bool:
    return task.state < 0 and task.state_info.retry_can_help


def retry(task: Task, user, *, automatic: bool = False) -> Task:
    """A new task for the same upload, linked by retry_of, so every attempt stays visible."""
    engine = engine_for(task.team)
    new = Task.objects.create(
        upload=task.upload,
        team=task.team,
        created_by=user if user is not None else task.created_by,
        operation=task.operation,
        options=task.options,
        engine=engine,
        retry_of=task,
        **_first_fields(engine),
    )
    how = "automatically" if automatic else f"by {user}"
    TaskEvent.objects.create(
        task=task, kind=EventKind.RETRIED, actor=user, message=f"Retried {how} as {new.public_id}"
    )
    TaskEvent.objects.create(
        task=new,
        kind=EventKind.CREATED,
        to_state=new.state,
        actor=user,
        message=f"Retry of {task.public_id}",
    )
    enqueue(new)
    return new


def retry_depth(task: Task) -> int:
    depth, current = 0, task
    while current.retry_of_id is not None:
        depth += 1
        current = Task.objects.only("retry_of_id").get(pk=current.retry_of_id)
    return depth


def _retry_automatically_if_transient(task: Task, code: int) -> None:
    if states.describe(code).retried_automatically and retry_depth(task) < MAX_AUTOMATIC_RETRIES:
        retry(task, None, automatic=True)


def store_result(
    task: Task,
    file,
    *,
    extension: str,
    sha256: str,
    size: int,
    width: int,
    height: int,
    fmt: str,
) -> bool:
    """Save the result file and complete the task (102 → 1); a task canceled meanwhile keeps
    nothing. The one path by which any engine's result reaches storage."""
    task.result.save(f"result{extension}", file, save=False)
    completed = move(
        task,
        State.COMPLETED,
        expect=State.SAVING_RESULT,
        kind=EventKind.RESULT_SAVED,
        message=f"{width} × {height} {fmt}",
        result=task.result.name,
        result_sha256=sha256,
        result_bytes=size,
        result_width=width,
        result_height=height,
        lease_expires_at=None,
    )
    if not completed:
        task.result.delete(save=False)
    return completed


def set_progress(task: Task, progress: int, *, expect: int, **fields) -> bool:
    """Record progress while the task is still in `expect`; False if it moved on (canceled)."""
    return bool(
        Task.objects.filter(pk=task.pk, state=expect).update(
            progress=max(0, min(100, progress)), updated_at=timezone.now(), **fields
        )
    )


def claim_for_sending(task_pk: int, lease: timedelta) -> Task | None:
    """Take a waiting task (100 → 101) so that exactly one process sends it."""
    now = timezone.now()
    claimed = Task.objects.filter(pk=task_pk, state=State.WAITING_TO_SEND).update(
        state=State.SENDING,
        attempts=F("attempts") + 1,
        lease_expires_at=now + lease,
        next_poll_at=now + lease,
        updated_at=now,
    )
    if not claimed:
        return None
    return Task.objects.select_related("team", "upload").get(pk=task_pk)


def take_back(task: Task, to_state: int, now, message: str, **fields) -> bool:
    """Return a task whose lease ran out (its worker died) to an earlier state."""
    if task.lease_expires_at is not None and task.lease_expires_at > now:
        return False
    fields.setdefault("next_poll_at", now)
    return move(
        task,
        to_state,
        expect=task.state,
        kind=EventKind.ERROR,
        message=message,
        lease_expires_at=None,
        **fields,
    )
