"""What people and the engines do to tasks: create them from uploads, cancel, retry, delete,
report progress and store results (each stored file with its thumbnail). State changes go
through `restorations.jobs.transitions`.
"""

import logging
import uuid

from django.db import transaction
from django.utils import timezone

from restorations.jobs import states, thumbnails, transitions
from restorations.jobs.models import Batch, Engine, EventKind, Task, Upload
from restorations.jobs.operations import clean_options, spec_for
from restorations.jobs.states import State
from restorations.jobs.validation import CheckedImage, check_image, clean_file_name

log = logging.getLogger(__name__)


def create_task(
    *,
    team,
    user,
    file,
    file_name: str,
    operation: str,
    options: dict,
    checked: CheckedImage | None = None,
    batch: Batch | None = None,
    batch_token: uuid.UUID | None = None,
) -> Task:
    """Validate, store the original and its thumbnail and create its task (in `batch`, or in
    the batch of the upload `batch_token` names, made by its first photo); raises
    ValidationError on bad input.

    `checked` skips a second read when the caller has already checked this file. Nothing is
    stored unless everything is valid, and stored files are removed again if the database
    refuses the rows, so a bad photo leaves neither files nor a batch behind.
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
    preview = thumbnails.make(file)
    upload.file.save(f"original{checked.extension}", file, save=False)
    if preview is not None:
        upload.thumbnail.save(f"thumbnail{thumbnails.EXTENSION}", preview, save=False)
    try:
        with transaction.atomic():
            if batch_token is not None:
                batch = batch_for_upload(team, user, batch_token, operation)
            upload.save()
            task = transitions.create(
                engine=Engine.for_team(team),
                actor=user,
                upload=upload,
                team=team,
                created_by=user,
                operation=operation,
                options=cleaned_options,
                batch=batch,
            )
    except BaseException:
        _delete_files(upload.file, upload.thumbnail)
        raise
    return task


def batch_for_upload(team, user, token: uuid.UUID, operation: str) -> Batch:
    """The batch of the upload named `token`, created by its first photo. Photos of one upload
    arrive in parallel requests: when two first photos race, the unique public id lets one
    insert and makes the other wait for it and then read its row (get_or_create), so an upload
    is one batch. Called inside the transaction that stores the photo's rows, so a photo that
    fails leaves no batch behind. A token of another team's batch is not found here (the
    insert fails); the upload view refuses it with a 404 before anything is stored
    (`access.upload_batch`, which only looks the batch up)."""
    batch, _created = Batch.objects.get_or_create(
        public_id=token, team=team, defaults={"created_by": user, "operation": operation}
    )
    return batch


def create_tasks(
    *, team, user, items, operation: str, options: dict, batch_token: uuid.UUID | None = None
) -> list[Task]:
    """All tasks or none, in one batch (the upload's `batch_token`, else a new one): `items`
    yields (file, file name, CheckedImage) for checked files. If one fails, the rows roll back
    and every file already stored is removed again."""
    created: list[Task] = []
    try:
        with transaction.atomic():
            batch = None
            if batch_token is None:
                batch = Batch.objects.create(team=team, created_by=user, operation=operation)
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
                        batch=batch,
                        batch_token=batch_token,
                    )
                )
    except BaseException:
        for task in created:
            _delete_files(task.upload.file, task.upload.thumbnail)
        raise
    return created


def _delete_files(*field_files) -> None:
    for field_file in field_files:
        if field_file:
            field_file.delete(save=False)


def resume_waiting_tasks(team) -> int:
    """After a team's key changed: its waiting tasks are sent at once, not at their next try."""
    return Task.objects.filter(
        team=team, state=State.WAITING_TO_SEND, lease_expires_at__isnull=True
    ).update(next_poll_at=timezone.now())


def fail(task: Task, code: int, message: str = "", *, expect: int | None = None) -> bool:
    return transitions.move(task, code, expect=expect, message=message)


def cancel(task: Task, user) -> bool:
    """Local cancel (PicWish has none): the task ends at -104 and a late result is ignored."""
    while not task.is_final:
        if transitions.move(task, State.CANCELED, kind=EventKind.CANCELED, actor=user):
            return True
        task.refresh_from_db(fields=["state"])
    return False


def can_retry(task: Task) -> bool:
    """A failure a retry can help, not retried yet (its retry is the attempt to retry), whose
    original is still stored."""
    return retry_would_help(task) and not task.retries.exists()


def retry_would_help(task: Task) -> bool:
    """A failure a retry can help, whose original is still stored; whether it was retried
    already is not asked (a photo's latest attempt never was: `TaskQuerySet.latest_attempts`)."""
    return (
        task.state_info.is_failure
        and task.state_info.retry_can_help
        and task.upload.files_deleted_at is None
    )


def retry(task: Task, user) -> Task | None:
    """A new attempt at the task's photo; the attempt made already if the task was retried
    meanwhile (a second click), None if the original was deleted meanwhile.

    The upload's row is locked, as the retention job locks it, so the original is never deleted
    under a new attempt."""
    with transaction.atomic():
        upload = Upload.objects.select_for_update().get(pk=task.upload_id)
        made = task.retries.order_by("-created_at").first()
        if made is not None:
            return made
        if upload.files_deleted_at is not None:
            return None
        return transitions.retry(task, user)


def attempt_number(task: Task) -> int:
    """1 for a photo's first task, 2 for its retry, and so on."""
    return transitions.retry_depth(task) + 1


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
    where: dict | None = None,
) -> bool:
    """Save the result file and its thumbnail and complete the task (102 → 1) if it still
    matches `where`; a task canceled meanwhile keeps nothing. The one path by which any
    engine's result reaches storage."""
    preview = thumbnails.make(file)
    task.result.save(f"result{extension}", file, save=False)
    if preview is not None:
        task.result_thumbnail.save(f"result{thumbnails.EXTENSION}", preview, save=False)
    completed = transitions.move(
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
        result_thumbnail=task.result_thumbnail.name or "",
        where=where,
    )
    if not completed:
        _delete_files(task.result, task.result_thumbnail)
    return completed


def backfill_thumbnail(upload: Upload) -> bool:
    """For an upload stored before thumbnails (`manage.py make_thumbnails`); False when its
    original cannot be read as an image."""
    return _backfill(upload, upload.file, "thumbnail", "thumbnail")


def backfill_result_thumbnail(task: Task) -> bool:
    """For a result stored before thumbnails; False when it cannot be read as an image."""
    return _backfill(task, task.result, "result_thumbnail", "result")


def _backfill(row, source, field: str, stem: str) -> bool:
    preview = _preview(source)
    if preview is None:
        return False
    thumbnail = getattr(row, field)
    thumbnail.save(f"{stem}{thumbnails.EXTENSION}", preview, save=False)
    type(row).objects.filter(pk=row.pk).update(**{field: thumbnail.name})
    return True


def _preview(field_file):
    try:
        with field_file.open("rb") as handle:
            return thumbnails.make(handle)
    except OSError as error:  # the file itself is gone
        log.warning("no thumbnail for %s: %s", field_file.name, error)
        return None


def delete(task: Task) -> bool:
    """Remove a final task's row and files, and its upload's when no other attempt of the photo
    is left. A task still in flight is refused (False): a worker may be writing its result.
    Files go once the rows are gone for good (on commit), so a rollback loses nothing."""
    with transaction.atomic():
        if not Task.objects.filter(~states.IN_PROGRESS, pk=task.pk).delete()[0]:
            return False
        files = [task.result, task.result_thumbnail]
        upload = task.upload
        if not upload.tasks.exists():
            files += [upload.file, upload.thumbnail]
            upload.delete()
        transaction.on_commit(lambda: _delete_files(*files))
    return True


def set_progress(task: Task, progress: int, *, expect: int, **fields) -> bool:
    """Record progress while the task is still in `expect`; False if it moved on (canceled)."""
    return bool(
        Task.objects.filter(pk=task.pk, state=expect).update(
            progress=max(0, min(100, progress)), updated_at=timezone.now(), **fields
        )
    )


def take_back(task: Task, to_state: int, now, message: str, **fields) -> bool:
    """Return a task whose lease ran out (its worker died) to an earlier state; a task already
    in `to_state` (a lost message) only gets its new schedule and a note."""
    if task.lease_expires_at is not None and task.lease_expires_at > now:
        return False
    fields.setdefault("next_poll_at", now)
    if task.state == to_state:
        taken = Task.objects.filter(
            pk=task.pk, state=task.state, lease_expires_at=task.lease_expires_at
        ).update(lease_expires_at=None, updated_at=now, **fields)
        if taken:
            transitions.note(task, EventKind.ERROR, message)
        return bool(taken)
    return transitions.move(
        task,
        to_state,
        kind=EventKind.ERROR,
        message=message,
        where={"lease_expires_at": task.lease_expires_at},
        lease_expires_at=None,
        **fields,
    )
