"""Running tasks on the built-in engine: claim, progress, result, and taking back lost runs.

A local task is born queued (state 0) and its message to the `local_engine` queue leaves when
the upload commits (`transitions.create`): one hop, no external call to wait for. The
dispatcher sends it again only if that message or its worker was lost.
"""

import hashlib
import logging
from datetime import timedelta

from django.core.files.base import ContentFile
from django.db.models import F
from django.utils import timezone

from restorations.engines import local
from restorations.jobs import queue, services, transitions
from restorations.jobs.models import Engine, Task
from restorations.jobs.states import State

log = logging.getLogger(__name__)

# How long one run may hold a task without reporting progress before it is taken back.
RUN_LEASE = timedelta(minutes=6)
# A task that lost its worker this many times fails instead of crashing workers forever.
MAX_RUNS = 3


class _Canceled(Exception):
    """The task left PROCESSING while the engine worked (canceled): stop and keep nothing."""


def run(task_pk: int) -> None:
    """Claim a queued local task (0 → 4), restore its photo and save the result."""
    lease = timezone.now() + RUN_LEASE
    task = transitions.claim(
        task_pk,
        State.QUEUED,
        State.PROCESSING,
        where={"engine": Engine.LOCAL},
        message="The built-in engine started",
        progress=0,
        processing_started_at=timezone.now(),
        processing_ends_at=None,
        attempts=F("attempts") + 1,
        lease_expires_at=lease,
        next_poll_at=lease,
    )
    if task is None:
        return

    def report(percent: int) -> None:
        lease = timezone.now() + RUN_LEASE
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
    _save_result(task, result)


def _save_result(task: Task, result: local.LocalResult) -> bool:
    made_by = (
        "classical image processing"
        if result.path == "classical"
        else f"the learned model ({result.path})"
    )
    if not transitions.move(
        task,
        State.SAVING_RESULT,
        expect=State.PROCESSING,
        progress=100,
        processing_ends_at=timezone.now(),
        message=f"Restored by the built-in engine with {made_by}",
    ):
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


def take_back(task: Task, now) -> None:
    """A due local task: its message or its worker was lost. Queue it again, or fail it once it
    has lost its worker MAX_RUNS times."""
    if task.state == State.PROCESSING and task.attempts >= MAX_RUNS:
        services.fail(
            task,
            State.FAILED,
            "The built-in engine stopped while working on this photo several times.",
            expect=task.state,
        )
        return
    if services.take_back(
        task,
        State.QUEUED,
        now,
        "The built-in engine did not finish; queued again",
        next_poll_at=now + transitions.LOCAL_QUEUE_WATCHDOG,
    ):
        queue.send(queue.RUN_LOCAL, task.pk)
