"""The job pipeline on the built-in engine, run in-process (Celery eager mode)."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone
from PIL import Image

from config.celery_app import app as celery_app
from restorations.engines import local
from restorations.jobs import local_runs, services
from restorations.jobs.dispatch import dispatch_due
from restorations.jobs.models import Task
from restorations.jobs.states import State
from tests.factories import photo_bytes, photo_upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager():
    """Run Celery tasks in-process as soon as they are sent."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def _create(team, user, **kwargs):
    kwargs.setdefault("file", photo_upload())
    return services.create_task(
        team=team,
        user=user,
        file_name=kwargs["file"].name,
        operation=kwargs.pop("operation", "restoration-old-photo"),
        options={},
        **kwargs,
    )


def test_upload_runs_through_to_a_stored_result(
    studio, alice, eager, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        task = _create(studio, alice)
    task.refresh_from_db()
    assert task.state == State.COMPLETED, task.failure_message
    assert task.progress == 100 and task.finished_at is not None and task.submitted_at
    assert task.result.name == f"results/{studio.public_id}/{task.public_id}.png"
    with task.result.open("rb") as result, Image.open(result) as image:
        assert image.size == (task.result_width, task.result_height)
    kinds = list(task.events.values_list("kind", "to_state"))
    assert kinds == [
        ("created", 0),
        ("state_changed", 4),
        ("state_changed", 102),
        ("result_saved", 1),
    ]
    # The timeline says which of the engine's paths made the result.
    saving = task.events.get(to_state=State.SAVING_RESULT).message
    assert saving.startswith("Restored by the built-in engine with ")
    assert "classical image processing" in saving or "learned model" in saving


def test_a_file_damaged_after_upload_ends_as_invalid_image(
    studio, alice, eager, django_capture_on_commit_callbacks
):
    task = _create(studio, alice)
    with task.upload.file.open("wb") as original:  # the stored file rots
        original.write(b"\x89PNG\r\n\x1a\n garbage")
    local_runs.run(task.pk)
    task.refresh_from_db()
    assert task.state == State.INVALID_IMAGE
    assert task.state_info.category == "input"
    assert not task.result and not task.retries.exists()


def test_an_upload_queues_one_run_of_the_engine(studio, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        task = _create(studio, alice)
    task.refresh_from_db()
    assert task.state == State.QUEUED and task.attempts == 0 and task.submitted_at
    assert len(callbacks) == 1  # one message to the engine's queue, no sending step


def test_running_the_engine_twice_runs_it_once(
    studio, alice, eager, django_capture_on_commit_callbacks
):
    task = _create(studio, alice)
    local_runs.run(task.pk)
    local_runs.run(task.pk)  # acks_late redelivery after success
    task.refresh_from_db()
    assert task.state == State.COMPLETED and task.attempts == 1
    assert task.events.filter(kind="result_saved").count() == 1


def test_cancel_while_the_engine_works_keeps_no_result(
    studio, alice, media_root, monkeypatch, django_capture_on_commit_callbacks
):
    task = _create(studio, alice)
    real_run = local.run

    def run_then_cancel(*args, progress, **kwargs):
        progress(10)
        services.cancel(Task.objects.get(pk=task.pk), alice)
        return real_run(*args, progress=progress, **kwargs)

    monkeypatch.setattr(local, "run", run_then_cancel)
    local_runs.run(task.pk)
    task.refresh_from_db()
    assert task.state == State.CANCELED and not task.result
    assert not (media_root / "results").exists()


def test_an_engine_crash_ends_the_task_with_a_reason(
    studio, alice, monkeypatch, django_capture_on_commit_callbacks
):
    task = _create(studio, alice)

    def explode(*args, **kwargs):
        raise MemoryError("out of memory")

    monkeypatch.setattr(local, "run", explode)
    local_runs.run(task.pk)
    task.refresh_from_db()
    assert task.state == State.FAILED
    assert "out of memory" in task.failure_message


def test_dispatcher_resends_a_task_whose_message_was_lost(
    studio, alice, eager, django_capture_on_commit_callbacks
):
    task = _create(studio, alice)  # on_commit never ran: the send message is lost
    Task.objects.filter(pk=task.pk).update(next_poll_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert dispatch_due() == 1
    task.refresh_from_db()
    assert task.state == State.COMPLETED


def test_dispatcher_takes_back_a_task_whose_worker_died(
    studio, alice, eager, django_capture_on_commit_callbacks
):
    task = _create(studio, alice)
    past = timezone.now() - timedelta(seconds=1)
    # A worker claimed the task and was killed: PROCESSING with a lapsed lease.
    Task.objects.filter(pk=task.pk).update(
        state=State.PROCESSING, attempts=1, lease_expires_at=past, next_poll_at=past
    )
    with django_capture_on_commit_callbacks(execute=True):
        dispatch_due()
    task.refresh_from_db()
    assert task.state == State.COMPLETED
    assert task.events.filter(kind="error", to_state=State.QUEUED).exists()


def test_dispatcher_leaves_a_live_lease_alone(studio, alice):
    task = _create(studio, alice)
    now = timezone.now()
    Task.objects.filter(pk=task.pk).update(
        state=State.PROCESSING,
        lease_expires_at=now + timedelta(minutes=5),
        next_poll_at=now - timedelta(seconds=1),
    )
    dispatch_due()
    task.refresh_from_db()
    assert task.state == State.PROCESSING


def test_a_task_that_keeps_killing_workers_fails(studio, alice):
    task = _create(studio, alice)
    past = timezone.now() - timedelta(seconds=1)
    Task.objects.filter(pk=task.pk).update(
        state=State.PROCESSING, attempts=3, lease_expires_at=past, next_poll_at=past
    )
    dispatch_due()
    task.refresh_from_db()
    assert task.state == State.FAILED


def test_transient_failures_are_retried_automatically_twice(studio, alice):
    first = _create(studio, alice)
    services.fail(first, State.TIMED_OUT)
    second = first.retries.get()
    services.fail(second, State.INSUFFICIENT_RESOURCES)
    third = second.retries.get()
    services.fail(third, State.TIMED_OUT)
    assert not third.retries.exists()
    assert [t.retry_of_id for t in (second, third)] == [first.pk, second.pk]
    assert third.state == State.TIMED_OUT


def test_input_failures_are_never_retried_automatically(studio, alice):
    task = _create(studio, alice)
    services.fail(task, State.INVALID_IMAGE)
    assert not task.retries.exists()


@pytest.mark.parametrize("operation", ["scale", "scale-pro", "colorization", "correction"])
def test_every_operation_completes_on_the_built_in_engine(
    studio, alice, eager, operation, django_capture_on_commit_callbacks
):
    jpeg = SimpleUploadedFile("p.jpg", photo_bytes(96, 64, fmt="JPEG"), "image/jpeg")
    with django_capture_on_commit_callbacks(execute=True):
        task = _create(studio, alice, operation=operation, file=jpeg)
    task.refresh_from_db()
    assert task.state == State.COMPLETED, task.failure_message
    assert task.result_bytes == task.result.size
