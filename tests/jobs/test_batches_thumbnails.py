"""Photos uploaded together form a batch; every stored file gets its thumbnail once, when it
is stored, and the thumbnails are served only to the task's team."""

import io

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.urls import reverse
from PIL import Image

from restorations.jobs import services, thumbnails, transitions
from restorations.jobs.models import Batch, Task, Upload
from restorations.jobs.states import State
from tests.factories import login_in_team, photo_bytes, photo_upload, stored_task

pytestmark = pytest.mark.django_db


def _upload(client, *names, size=(64, 48)):
    photos = [photo_upload(name, photo_bytes(*size, seed=n)) for n, name in enumerate(names)]
    return client.post(
        reverse("jobs:task_create"), {"photos": photos, "operation": "restoration-old-photo"}
    )


def _size_of(field_file) -> tuple[int, int]:
    with field_file.open("rb") as handle, Image.open(handle) as image:
        return image.size


def _finish(task, data: bytes) -> Task:
    transitions.move(task, State.PROCESSING, expect=State.QUEUED)
    transitions.move(task, State.SAVING_RESULT, expect=State.PROCESSING)
    assert services.store_result(
        task, ContentFile(data), extension=".png", sha256="x", size=1, width=1, height=1, fmt="PNG"
    )
    task.refresh_from_db()
    return task


def test_a_multi_file_upload_makes_one_batch(client, studio, alice):
    login_in_team(client, alice, studio)
    assert _upload(client, "a.png", "b.png", "c.png").status_code == 302
    batch = Batch.objects.get()
    assert set(Task.objects.values_list("batch", flat=True)) == {batch.pk}
    assert (batch.team, batch.created_by, batch.operation) == (
        studio,
        alice,
        "restoration-old-photo",
    )
    assert batch.display_name.startswith("3 photos · ")


def test_each_upload_is_a_batch_of_its_own(client, studio, alice):
    login_in_team(client, alice, studio)
    _upload(client, "a.png", "b.png")
    _upload(client, "c.png")
    assert sorted(batch.photo_count for batch in Batch.objects.all()) == [1, 2]


def test_create_task_joins_a_given_batch(studio, alice):
    batch = Batch.objects.create(team=studio, created_by=alice, operation="scale")
    assert stored_task(studio, alice, batch=batch).batch == batch


def test_a_retry_keeps_its_originals_batch(client, studio, alice):
    login_in_team(client, alice, studio)
    _upload(client, "a.png", "b.png")
    task = Task.objects.first()
    services.fail(task, State.SERVICE_ERROR)
    retry = services.retry(task, alice)
    assert retry.batch_id == task.batch_id is not None
    assert Batch.objects.get().photo_count == 2  # photos, not attempts


def test_the_original_gets_a_320px_thumbnail_when_stored(client, studio, alice):
    login_in_team(client, alice, studio)
    _upload(client, "wide.png", size=(800, 600))
    upload = Upload.objects.get()
    assert upload.thumbnail.name.endswith(".webp")
    assert upload.thumbnail.storage.exists(upload.thumbnail.name)
    assert _size_of(upload.thumbnail) == (320, 240)


def test_the_thumbnail_is_turned_as_the_exif_orientation_says(studio, alice):
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90°: the camera was held upright
    Image.new("RGB", (640, 480), "white").save(buffer, format="JPEG", exif=exif)
    task = stored_task(studio, alice, "upright.jpg", data=buffer.getvalue())
    assert _size_of(task.upload.thumbnail) == (240, 320)


def test_the_result_gets_its_thumbnail_whenstored_task(studio, alice):
    task = stored_task(studio, alice)
    task = _finish(task, photo_bytes(1000, 500, seed=3))
    assert task.result_thumbnail.name.endswith("-result.webp")
    assert _size_of(task.result_thumbnail) == (320, 160)


def test_no_thumbnail_is_made_while_pages_are_viewed(client, studio, alice, monkeypatch):
    task = stored_task(studio, alice)
    Upload.objects.update(thumbnail="")  # a row from before thumbnails

    def refuse(file):
        raise AssertionError("a thumbnail was made while a page was viewed")

    monkeypatch.setattr(thumbnails, "make", refuse)
    login_in_team(client, alice, studio)
    listing = client.get(reverse("jobs:task_list"))
    assert "img/placeholder.svg" in listing.content.decode()
    live = client.get(reverse("jobs:task_live"), {"ids": str(task.public_id)}).json()
    assert live["tasks"][0]["thumbnail_url"].endswith("img/placeholder.svg")
    response = client.get(reverse("jobs:thumbnail", args=[task.public_id]))
    assert response.status_code == 302 and response["Location"].endswith("img/placeholder.svg")
    assert "no-cache" in response["Cache-Control"]


def test_thumbnails_are_served_privately_with_a_long_cache(client, studio, alice):
    task = stored_task(studio, alice)
    login_in_team(client, alice, studio)
    response = client.get(reverse("jobs:thumbnail", args=[task.public_id]))
    assert response.status_code == 200 and response["Content-Type"] == "image/webp"
    assert b"".join(response.streaming_content) == task.upload.thumbnail.open("rb").read()
    cache = response["Cache-Control"]
    assert "private" in cache and "max-age=2592000" in cache


@pytest.mark.parametrize("name", ["jobs:thumbnail", "jobs:result_thumbnail"])
def test_outsiders_get_404_for_thumbnails(client, studio, alice, charlie, name):
    task = stored_task(studio, alice)
    _finish(task, photo_bytes(seed=5))
    client.force_login(charlie)
    assert client.get(reverse(name, args=[task.public_id])).status_code == 404


def test_make_thumbnails_backfills_rows_without_one(studio, alice, capsys):
    task = stored_task(studio, alice)
    task = _finish(task, photo_bytes(seed=5))
    Upload.objects.update(thumbnail="")
    Task.objects.update(result_thumbnail="")
    call_command("make_thumbnails")
    task.refresh_from_db()
    thumbnail = task.upload.thumbnail
    assert thumbnail and thumbnail.storage.exists(thumbnail.name)
    assert task.result_thumbnail and _size_of(task.result_thumbnail) == (64, 48)
    assert "1 original and 1 result thumbnails made" in capsys.readouterr().out
