"""The retention job: a photo's files go its team's retention period after its last attempt
finished; the rows and timelines stay, the pages say so, and nothing in flight loses a file.
Run against PostgreSQL (DATABASE_URL), where its locks are real."""

import threading
from datetime import timedelta
from html import unescape

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.urls import reverse
from django.utils import timezone

from config.celery_app import app as celery_app
from restorations.jobs import queue, retention, services
from restorations.jobs.models import EventKind, Task, Upload
from restorations.jobs.states import State
from tests.factories import restored_task, stored_files, stored_task

pytestmark = pytest.mark.django_db


def _finished_days_ago(task, days: float) -> None:
    """As if the task finished `days` ago, its photo uploaded an hour before that."""
    finished = timezone.now() - timedelta(days=days)
    Task.objects.filter(pk=task.pk).update(finished_at=finished)
    Upload.objects.filter(pk=task.upload_id, created_at__gt=finished).update(
        created_at=finished - timedelta(hours=1)
    )


@pytest.fixture
def old(studio, alice):
    """A restored photo whose restoration finished 31 days ago (studio keeps files 30 days)."""
    task = restored_task(studio, alice, "family.png")
    _finished_days_ago(task, 31)
    return task


def test_a_photo_past_retention_loses_its_files_and_keeps_its_rows(old, media_root):
    assert len(stored_files(media_root)) == 4  # original, result and their thumbnails
    sha256, events = old.result_sha256, old.events.count()
    assert retention.delete_expired() == 1
    assert stored_files(media_root) == []
    old.refresh_from_db()
    upload = old.upload
    assert upload.files_deleted_at is not None
    assert (upload.file.name, upload.thumbnail.name) == ("", "")
    assert (old.result.name, old.result_thumbnail.name) == ("", "")
    assert old.state == State.COMPLETED and old.result_sha256 == sha256
    assert old.events.count() == events + 1
    note = old.events.last()
    assert note.kind == EventKind.FILES_DELETED
    assert "30 days after the photo's last restoration finished" in note.message
    assert retention.delete_expired() == 0  # nothing left to do


def test_a_photo_within_retention_keeps_its_files(studio, alice, media_root):
    task = restored_task(studio, alice)
    _finished_days_ago(task, 29)
    assert retention.delete_expired() == 0
    assert len(stored_files(media_root)) == 4


def test_each_team_keeps_files_for_its_own_period(studio, alice, charlie, media_root):
    own = charlie.personal_team()
    own.retention_days = 7
    own.save()
    theirs = restored_task(own, charlie, "theirs.png")
    ours = restored_task(studio, alice, "ours.png")
    _finished_days_ago(theirs, 8)
    _finished_days_ago(ours, 8)
    assert retention.delete_expired() == 1
    assert Upload.objects.get(pk=theirs.upload_id).files_deleted_at is not None
    assert Upload.objects.get(pk=ours.upload_id).files_deleted_at is None


def test_the_period_counts_from_the_photos_last_attempt(old, alice):
    retry = Task.objects.create(
        upload=old.upload, team=old.team, operation=old.operation, engine=old.engine,
        state=State.QUEUED, retry_of=old,
    )  # fmt: skip
    assert retention.delete_expired() == 0  # an attempt in flight needs the original
    Task.objects.filter(pk=retry.pk).update(state=State.CANCELED)
    _finished_days_ago(retry, 3)
    assert retention.delete_expired() == 0  # the last attempt finished 3 days ago
    last_finish = Task.objects.get(pk=retry.pk).finished_at
    assert retention.files_expire_at(old) == last_finish + timedelta(days=30)
    _finished_days_ago(retry, 30.1)
    assert retention.delete_expired() == 1


def test_a_final_task_without_a_finish_time_keeps_its_photo(studio, alice):
    task = stored_task(studio, alice)
    Task.objects.filter(pk=task.pk).update(state=State.CANCELED, finished_at=None)
    Upload.objects.filter(pk=task.upload_id).update(created_at=timezone.now() - timedelta(days=90))
    assert retention.delete_expired() == 0
    assert retention.files_expire_at(task) is None


def test_after_deletion_the_page_says_so_and_offers_no_files(client, alice, old):
    retention.delete_expired()
    client.force_login(alice)
    page = unescape(client.get(reverse("jobs:task_detail", args=[old.public_id])).content.decode())
    assert "The original and the result were deleted on" in page
    assert "30 days after the photo's last restoration finished" in page
    assert "Download original" not in page and "Download result" not in page
    assert 'id="compare"' not in page
    assert "Files deleted" in page  # the timeline
    for name in ["jobs:download_original", "jobs:download_result"]:
        response = client.get(reverse(name, args=[old.public_id]), follow=True)
        assert response.redirect_chain == [(reverse("jobs:task_detail", args=[old.public_id]), 303)]
        assert "deleted after the team's retention period" in unescape(response.content.decode())
    for name in ["jobs:view_original", "jobs:view_result"]:
        assert client.get(reverse(name, args=[old.public_id])).status_code == 410
    thumbnail = client.get(reverse("jobs:thumbnail", args=[old.public_id]))
    assert thumbnail.status_code == 302 and "placeholder" in thumbnail["Location"]


def test_outsiders_learn_nothing_of_a_deleted_photo(client, charlie, old):
    retention.delete_expired()
    client.force_login(charlie)
    for name in ["jobs:view_original", "jobs:view_result", "jobs:download_result"]:
        assert client.get(reverse(name, args=[old.public_id])).status_code == 404


def test_a_photo_whose_files_are_deleted_cannot_be_retried(client, alice, studio):
    task = stored_task(studio, alice)
    services.fail(task, State.SERVICE_ERROR)
    task.retries.all().delete()  # the automatic retry, so that this attempt is the latest
    _finished_days_ago(task, 40)
    assert services.can_retry(task)
    retention.delete_expired()
    task.refresh_from_db()
    assert not services.can_retry(task)
    assert services.retry(task, alice) is None
    client.force_login(alice)
    response = client.post(reverse("jobs:task_retry", args=[task.public_id]))
    assert response.status_code == 303 and not task.retries.exists()


def test_a_file_that_cannot_be_deleted_records_nothing_until_it_is(old, media_root):
    result = media_root / old.result.name
    result.unlink()
    (result / "in-the-way").mkdir(parents=True)  # a folder in its place: deleting it fails
    assert retention.delete_expired() == 0
    upload = Upload.objects.get(pk=old.upload_id)
    assert upload.files_deleted_at is None and upload.file.name
    assert not old.events.filter(kind=EventKind.FILES_DELETED).exists()
    (result / "in-the-way").rmdir()
    assert retention.delete_expired() == 1
    assert stored_files(media_root) == []


def test_make_thumbnails_leaves_deleted_photos_alone(old, capsys):
    retention.delete_expired()
    call_command("make_thumbnails")
    assert "0 original and 0 result thumbnails made; 0 files" in capsys.readouterr().out


def test_the_job_runs_on_beat_every_hour():
    entry = settings.CELERY_BEAT_SCHEDULE["delete-expired-files"]
    assert entry["task"] == queue.DELETE_EXPIRED_FILES
    assert entry["schedule"] == 3600
    celery_app.loader.import_default_modules()
    assert queue.DELETE_EXPIRED_FILES in celery_app.tasks


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_the_job_sent_by_name(old, media_root, celery_worker_thread):
    queue.send(queue.DELETE_EXPIRED_FILES)
    deadline = timezone.now() + timedelta(seconds=30)
    while timezone.now() < deadline and stored_files(media_root):
        threading.Event().wait(0.2)
    assert stored_files(media_root) == []
    assert Upload.objects.get(pk=old.upload_id).files_deleted_at is not None


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks are PostgreSQL's")
@pytest.mark.django_db(transaction=True)
def test_a_retry_holding_the_photo_keeps_its_files(old, media_root):
    """A retry locks the upload's row while it makes the new attempt; the job skips the photo
    meanwhile, and once the retry has committed the photo has an attempt in flight."""
    locked, release = threading.Event(), threading.Event()

    def retry_in_progress():
        try:
            with transaction.atomic():
                Upload.objects.select_for_update().get(pk=old.upload_id)
                locked.set()
                release.wait(10)
                Task.objects.create(
                    upload=old.upload, team=old.team, operation=old.operation,
                    engine=old.engine, state=State.QUEUED, retry_of=old,
                )  # fmt: skip
        finally:
            connections.close_all()

    other = threading.Thread(target=retry_in_progress)
    other.start()
    assert locked.wait(10)
    try:
        assert retention.delete_files(old.upload_id, timezone.now()) is False
    finally:
        release.set()
        other.join()
    assert retention.delete_expired() == 0
    assert Upload.objects.get(pk=old.upload_id).files_deleted_at is None
    assert (media_root / old.upload.file.name).exists()
