"""Deleting stored files after the team's retention period.

A photo's files (its original, every attempt's result and their thumbnails) are kept for the
team's `retention_days` after the last of its attempts finished, and never while one is still in
flight. Then `delete_expired` (Celery beat, `restorations/jobs/tasks.py`) deletes them from
storage. The rows and timelines stay: the upload records when its files went
(`Upload.files_deleted_at`), each attempt's timeline says so, and the pages offer no downloads.

Counting from the last finish, not from the upload, gives every result the full period to be
downloaded, and keeps the original while a retry still needs it.
"""

import functools
import logging
import operator
import time
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from restorations.accounts.models import Team
from restorations.jobs import states, transitions
from restorations.jobs.models import EventKind, Task, Upload

log = logging.getLogger(__name__)

ONE_DAY = timedelta(days=1)
# Photos handled per query; a run goes on with the next ones until none is left or its time is up.
CHUNK = 100
# A run stops starting photos after this, well inside Celery's soft time limit (240 s); the next
# run goes on where it stopped.
RUN_SECONDS = 120


def expired(now: datetime):
    """Photos whose files are still stored and may go: no attempt in flight, and none finished
    within its team's retention period before `now`. A final task without a finish time (rows
    written before there was one) keeps its photo: nothing says how long it has been kept.

    One condition per retention period in use (teams share a few: 30 days unless changed),
    comparing times with plain values, which every database and the index can use; SQLite
    cannot multiply a duration by a column."""
    periods = sorted(set(Team.objects.values_list("retention_days", flat=True)))
    if not periods:
        return Upload.objects.none()
    cutoffs = [(days, now - days * ONE_DAY) for days in periods]
    # A photo is uploaded before any attempt at it finishes, so only older ones can be expired.
    old_enough = _any(Q(team__retention_days=days, created_at__lte=at) for days, at in cutoffs)
    recent = _any(Q(team__retention_days=days, finished_at__gt=at) for days, at in cutoffs)
    keeping = Task.objects.filter(upload=OuterRef("pk")).filter(
        states.IN_PROGRESS | Q(finished_at__isnull=True) | recent
    )
    return Upload.objects.filter(old_enough, files_deleted_at__isnull=True).exclude(Exists(keeping))


def _any(conditions) -> Q:
    return functools.reduce(operator.or_, conditions)


def files_expire_at(task: Task) -> datetime | None:
    """When the retention job may delete the files of the task's photo: its team's retention
    period after the last of the photo's attempts finished; None while one is still in flight
    (or has no finish time), or once they are deleted."""
    upload = task.upload
    if upload.files_deleted_at is not None:
        return None
    finishes = [attempt.finished_at for attempt in upload.tasks.only("state", "finished_at")]
    if not finishes or None in finishes:
        return None
    return max(finishes) + task.team.retention_days * ONE_DAY


def delete_expired(now: datetime | None = None, *, run_seconds: float = RUN_SECONDS) -> int:
    """Delete the files of every expired photo; returns how many photos were emptied. A photo
    whose deletion fails is logged and left for the next run."""
    now = now or timezone.now()
    stop_at = time.monotonic() + run_seconds
    deleted, passed = 0, set()
    while time.monotonic() < stop_at:
        pks = list(
            expired(now).exclude(pk__in=passed).order_by("created_at").values_list("pk", flat=True)
        )[:CHUNK]
        if not pks:
            break
        for pk in pks:
            if time.monotonic() >= stop_at:
                break
            try:
                if delete_files(pk, now):
                    deleted += 1
                else:
                    passed.add(pk)
            except Exception:
                log.exception(
                    "deleting the files of upload %s failed; the next run tries again", pk
                )
                passed.add(pk)
    if deleted:
        log.info("retention: deleted the files of %s photos", deleted)
    return deleted


def delete_files(upload_pk: int, now: datetime) -> bool:
    """Delete one expired photo's files and record it; False if it is not expired (any more) or
    another process holds it.

    The upload's row is locked first and the expiry checked again after, in a new statement, so
    a retry that committed meanwhile (`services.retry` locks the same row) keeps the original.
    Files are deleted before the commit: if one cannot be deleted, nothing is recorded and the
    next run tries again (deleting a file already gone is no error), so a photo is never said
    to be deleted while its files are still stored.
    """
    with transaction.atomic():
        upload = (
            Upload.objects.select_for_update(skip_locked=True)
            .select_related("team")
            .filter(pk=upload_pk, files_deleted_at__isnull=True)
            .first()
        )
        if upload is None or not expired(now).filter(pk=upload_pk).exists():
            return False
        tasks = list(upload.tasks.all())
        for field_file in [upload.file, upload.thumbnail]:
            if field_file:
                field_file.delete(save=False)
        for task in tasks:
            for field_file in [task.result, task.result_thumbnail]:
                if field_file:
                    field_file.delete(save=False)
        Upload.objects.filter(pk=upload.pk).update(file="", thumbnail="", files_deleted_at=now)
        Task.objects.filter(upload=upload).update(result="", result_thumbnail="")
        days = upload.team.retention_days
        for task in tasks:
            transitions.note(
                task,
                EventKind.FILES_DELETED,
                f"The original, the result and their previews were deleted {days} "
                f"day{'' if days == 1 else 's'} after the photo's last restoration finished, "
                "as the team's retention period says",
            )
    return True
