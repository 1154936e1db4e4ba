"""Results as one ZIP: entry names, the manifest, attempts, streaming, local files and S3."""

import csv
import hashlib
import io
import zipfile
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from restorations.jobs import archive, retention, services, states
from restorations.jobs.models import Batch, Task, Upload
from restorations.jobs.states import State
from tests.factories import (
    OpenCountingStorage,
    complete,
    finished_task,
    login_in_team,
    photo_bytes,
    stored_task,
)

pytestmark = pytest.mark.django_db


def _batch(team, user) -> Batch:
    return Batch.objects.create(team=team, created_by=user, operation="scale")


def _download_batch(client, batch):
    response = client.get(reverse("jobs:batch_download", args=[batch.public_id]))
    assert response.status_code == 200, response
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def manifest_of(zip_file) -> list[dict]:
    text = zip_file.read(archive.MANIFEST_NAME).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


def test_entries_are_named_after_the_originals_and_collisions_stay_readable(client, studio, alice):
    batch = _batch(studio, alice)
    for name in ("Grandad 1961.png", "photo.png", "PHOTO.png", "photo.webp", "a:b?.png"):
        finished_task(studio, alice, name, batch=batch)
    login_in_team(client, alice, studio)
    assert _download_batch(client, batch).namelist() == [
        "Grandad 1961-restored.jpg",
        "photo-restored.jpg",
        "PHOTO-restored (2).jpg",
        "photo-restored (3).jpg",
        "a_b_-restored.jpg",
        "manifest.csv",
    ]


def test_entry_names_never_take_the_manifests_name():
    names = archive.EntryNames(reserved=[archive.MANIFEST_NAME])
    assert [names.take(n) for n in ("Manifest.CSV", "x.jpg", "X.jpg", "x (2).jpg")] == [
        "Manifest (2).CSV",
        "x.jpg",
        "X (2).jpg",
        "x (2) (2).jpg",
    ]


def test_the_manifest_lists_every_task_and_hashes_what_was_sent(client, studio, alice):
    batch = _batch(studio, alice)
    done = finished_task(studio, alice, "Wedding.png", batch=batch, result=photo_bytes(fmt="JPEG"))
    broken = stored_task(studio, alice, "Scan.png", batch=batch)
    services.fail(broken, State.INVALID_IMAGE)
    working = stored_task(studio, alice, "Beach.png", batch=batch, operation="colorization")
    login_in_team(client, alice, studio)
    zip_file = _download_batch(client, batch)

    assert zip_file.namelist() == ["Wedding-restored.jpg", "manifest.csv"]
    with done.result.open("rb") as stored:
        stored_bytes = stored.read()
    assert zip_file.read("Wedding-restored.jpg") == stored_bytes
    assert hashlib.sha256(stored_bytes).hexdigest() == done.result_sha256
    assert zip_file.getinfo("Wedding-restored.jpg").compress_type == zipfile.ZIP_STORED
    rows = manifest_of(zip_file)
    assert list(rows[0]) == list(archive.MANIFEST_FIELDS)
    assert rows == [
        {
            "file_name": "Wedding-restored.jpg",
            "original_name": "Wedding.png",
            "operation": "Enhance",
            "state": "Completed",
            "reason": done.state_info.reason,
            "attempts": "1",
            "result_sha256": done.result_sha256,
        },
        {
            "file_name": "",
            "original_name": "Scan.png",
            "operation": "Enhance",
            "state": "Not a valid image",
            "reason": states.describe(State.INVALID_IMAGE).reason,
            "attempts": "1",
            "result_sha256": "",
        },
        {
            "file_name": "",
            "original_name": "Beach.png",
            "operation": "Colourise",
            "state": "Queued",
            "reason": working.state_info.reason,
            "attempts": "1",
            "result_sha256": "",
        },
    ]


def test_the_sha256_is_computed_from_the_bytes_sent(client, studio, alice, media_root):
    batch = _batch(studio, alice)
    task = finished_task(studio, alice, "a.png", batch=batch)
    changed = photo_bytes(80, 60, fmt="JPEG", seed=9)
    (media_root / task.result.name).write_bytes(changed)  # not what was recorded any more
    login_in_team(client, alice, studio)
    (row,) = manifest_of(_download_batch(client, batch))
    assert row["result_sha256"] == hashlib.sha256(changed).hexdigest() != task.result_sha256


def test_a_batch_lists_each_photo_once_with_its_attempts(client, studio, alice):
    batch = _batch(studio, alice)
    first = stored_task(studio, alice, "Retried.png", batch=batch)
    services.fail(first, State.FAILED)
    second = services.retry(first, alice)
    services.fail(second, State.FAILED)
    complete(services.retry(second, alice))
    finished_task(studio, alice, "Once.png", batch=batch)
    login_in_team(client, alice, studio)
    rows = manifest_of(_download_batch(client, batch))
    assert [(r["original_name"], r["state"], r["attempts"]) for r in rows] == [
        ("Retried.png", "Completed", "3"),
        ("Once.png", "Completed", "1"),
    ]
    assert rows[0]["file_name"] == "Retried-restored.jpg"


def test_a_selected_attempt_counts_every_try_of_its_photo(client, studio, alice):
    first = stored_task(studio, alice, "Retried.png")
    services.fail(first, State.FAILED)
    complete(services.retry(first, alice))
    login_in_team(client, alice, studio)
    response = client.post(reverse("jobs:selection_download"), {"ids": [str(first.public_id)]})
    # The first attempt failed, so this selection has no result: the retry's would be.
    assert response.status_code == 303
    second = first.retries.get()
    response = client.post(
        reverse("jobs:selection_download"), {"ids": [str(first.public_id), str(second.public_id)]}
    )
    rows = manifest_of(zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))))
    assert [(r["state"], r["attempts"], r["file_name"]) for r in rows] == [
        ("Restoration failed", "2", ""),
        ("Completed", "2", "Retried-restored.jpg"),
    ]


def test_a_result_gone_from_storage_is_named_in_the_manifest(client, studio, alice, media_root):
    batch = _batch(studio, alice)
    gone = finished_task(studio, alice, "gone.png", batch=batch)
    finished_task(studio, alice, "kept.png", batch=batch)
    (media_root / gone.result.name).unlink()
    login_in_team(client, alice, studio)
    zip_file = _download_batch(client, batch)
    assert zip_file.namelist() == ["kept-restored.jpg", "manifest.csv"]
    rows = manifest_of(zip_file)
    assert (rows[0]["file_name"], rows[0]["reason"]) == ("", archive.UNREADABLE)


def test_a_result_deleted_after_the_retention_period_is_named_in_the_manifest(
    client, studio, alice
):
    batch = _batch(studio, alice)
    old = finished_task(studio, alice, "old.png", batch=batch)
    finished_task(studio, alice, "new.png", batch=batch)
    long_ago = timezone.now() - timedelta(days=400)
    Task.objects.filter(pk=old.pk).update(finished_at=long_ago)
    Upload.objects.filter(pk=old.upload_id).update(created_at=long_ago - timedelta(hours=1))
    assert retention.delete_files(old.upload.pk, timezone.now())
    login_in_team(client, alice, studio)
    zip_file = _download_batch(client, batch)
    assert zip_file.namelist() == ["new-restored.jpg", "manifest.csv"]
    rows = manifest_of(zip_file)
    assert (rows[0]["file_name"], rows[0]["state"], rows[0]["reason"]) == (
        "",
        "Completed",
        archive.DELETED,
    )


def test_the_zip_streams_its_first_bytes_before_it_opens_the_last_file(
    client, settings, studio, alice
):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "tests.factories.OpenCountingStorage"},
    }
    batch = _batch(studio, alice)
    big = photo_bytes(400, 300, fmt="JPEG")  # more than one chunk
    assert len(big) > archive.CHUNK_BYTES
    tasks = [finished_task(studio, alice, f"{n}.png", batch=batch, result=big) for n in range(3)]
    OpenCountingStorage.opened = []
    login_in_team(client, alice, studio)
    response = client.get(reverse("jobs:batch_download", args=[batch.public_id]))
    assert response.streaming and OpenCountingStorage.opened == []
    chunks = iter(response.streaming_content)
    first = next(chunks)
    assert first.startswith(b"PK\x03\x04") and len(first) < len(big)
    assert OpenCountingStorage.opened == [tasks[0].result.name]
    rest = b"".join(chunks)
    assert OpenCountingStorage.opened == [task.result.name for task in tasks]
    zip_file = zipfile.ZipFile(io.BytesIO(first + rest))
    assert zip_file.testzip() is None
    assert [zip_file.read(f"{n}-restored.jpg") for n in range(3)] == [big] * 3


def test_results_stored_on_s3_are_read_from_s3(client, s3_storage, studio, alice, media_root):
    batch = _batch(studio, alice)
    big = photo_bytes(400, 300, fmt="JPEG")
    tasks = [
        finished_task(studio, alice, "large.png", batch=batch, result=big),
        finished_task(studio, alice, "small.png", batch=batch),
    ]
    assert not list(media_root.rglob("*.jpg"))  # nothing on the local disk
    in_bucket = {obj.key: obj.get()["Body"].read() for obj in s3_storage.objects.all()}
    login_in_team(client, alice, studio)
    zip_file = _download_batch(client, batch)
    assert zip_file.read("large-restored.jpg") == in_bucket[tasks[0].result.name] == big
    assert zip_file.read("small-restored.jpg") == in_bucket[tasks[1].result.name]
    assert [row["result_sha256"] for row in manifest_of(zip_file)] == [
        task.result_sha256 for task in tasks
    ]


def test_a_file_name_a_spreadsheet_would_run_as_a_formula_stays_text(client, studio, alice):
    batch = _batch(studio, alice)
    finished_task(studio, alice, "=HYPERLINK(1).png", batch=batch)
    login_in_team(client, alice, studio)
    rows = manifest_of(_download_batch(client, batch))
    assert rows[0]["original_name"] == "'=HYPERLINK(1).png"
    assert rows[0]["file_name"] == "'=HYPERLINK(1)-restored.jpg"
