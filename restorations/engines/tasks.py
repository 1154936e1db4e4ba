"""The built-in engine as a Celery task on its own queue (`local_engine`)."""

import hashlib
import logging

from celery import shared_task
from django.core.files.base import ContentFile
from django.db.models import F
from django.utils import timezone

from restorations.engines import local
from restorations.jobs import services
from restorations.jobs.models import Engine, EventKind, Task, TaskEvent
from restorations.jobs.states import State
from restorations.jobs.tasks import LOCAL_RUN_LEASE

log = logging.getLogger(__name__)


class _Canceled(Exception):
    """The task left PROCESSING while the engine worked (canceled): stop and keep nothing."""


@shared_task
def run_local_engine(task_pk: int) -> None:
    now = timezone.now()
    claimed = Task.objects.filter(pk=task_pk, state=State.QUEUED, engine=Engine.LOCAL).update(
        state=State.PROCESSING,
        progress=0,
        attempts=F("attempts") + 1,
        lease_expires_at=now + LOCAL_RUN_LEASE,
        next_poll_at=now + LOCAL_RUN_LEASE,
        updated_at=now,
    )
    if not claimed:
        return
    task = Task.objects.select_related("upload", "team").get(pk=task_pk)
    TaskEvent.objects.create(
        task=task,
        kind=EventKind.STATE_CHANGED,
        from_state=State.QUEUED,
        to_state=State.PROCESSING,
        message="The built-in engine started",
    )

    def report(percent: int) -> None:
        lease = timezone.now() + LOCAL_RUN_LEASE
        if not services.set_progress(
            task, percent, expect=State.PROCESSING, lease_expires_at=lease, next_poll_at=lease
        ):
            raise _Canceled

    try:
        with task.upload.file.open("rb") as original:
            data = original.read()
        result = local.run(
            data, task.operation, task.options, progress=report, source_format=task.upload.format
        )
    except _Canceled:
        return
    except local.CorruptImage as exc:
        services.fail(task, State.INVALID_IMAGE, str(exc), expect=State.PROCESSING)
        return
    except Exception as exc:  # the engine itself broke: end the task with a reason, keep the log
        log.exception("built-in engine failed on task %s", task.public_id)
        services.fail(task, State.FAILED, f"Built-in engine error: {exc}", expect=State.PROCESSING)
        return
    save_result(task, result, expect=State.PROCESSING)


def save_result(task: Task, result: "local.LocalResult", *, expect: int) -> bool:
    if not services.move(task, State.SAVING_RESULT, expect=expect, progress=100):
        return False
    return services.store_result(
        task,
        ContentFile(result.data),
        extension=result.extension,
        sha256=hashlib.sha256(result.data).hexdigest(),
        size=len(result.data),
        width=result.width,
        height=result.height,
        fmt=result.format,
    )
