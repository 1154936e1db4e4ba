"""Photos sent one per request by the upload page's script: each good photo is stored in the
batch its upload's token names (made by the first good photo), each bad one is a 400 with its
reason and leaves nothing behind, and the token is checked through the access module."""

import io
import threading
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.db.models.signals import pre_save
from django.test import Client
from django.urls import reverse
from PIL import Image

from restorations.jobs.models import Batch, Task, Upload
from restorations.jobs.operations import MB
from restorations.jobs.views import uploads
from tests.factories import login_in_team, photo_bytes, photo_upload, stored_files

pytestmark = pytest.mark.django_db


def _send(client, photo=None, *, token=None, operation="restoration-old-photo", **options):
    data = {"operation": operation, **{f"{operation}__{k}": v for k, v in options.items()}}
    if photo is not None:
        data["photo"] = photo
    if token is not None:
        data["upload"] = str(token)
    return client.post(reverse("jobs:upload_photo"), data)


def _nothing_stored(media_root):
    assert Upload.objects.count() == Task.objects.count() == Batch.objects.count() == 0
    assert stored_files(media_root) == []


def _wide_png(width, height) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height)).save(buffer, "PNG")
    return buffer.getvalue()


def test_the_first_good_photo_makes_the_batch_its_token_names(client, studio, alice):
    login_in_team(client, alice, studio)
    token = uuid.uuid4()
    response = _send(client, photo_upload("Grandma.png"), token=token, change_color="0")
    assert response.status_code == 201
    task = Task.objects.get()
    batch = Batch.objects.get()
    assert batch.public_id == token and task.batch == batch
    assert (batch.team, batch.created_by, batch.operation) == (
        studio,
        alice,
        "restoration-old-photo",
    )
    assert task.options == {"restoration_type": "0", "change_color": "0"}
    assert response.json() == {
        "task": str(task.public_id),
        "name": "Grandma.png",
        "task_url": reverse("jobs:task_detail", args=[task.public_id]),
        "batch_url": reverse("jobs:batch_detail", args=[token]),
    }


def test_the_photos_of_one_upload_join_its_batch_and_another_upload_makes_its_own(
    client, studio, alice
):
    login_in_team(client, alice, studio)
    first, second = uuid.uuid4(), uuid.uuid4()
    for name in ("a.png", "b.png", "c.png"):
        assert _send(client, photo_upload(name), token=first).status_code == 201
    assert _send(client, photo_upload("d.png"), token=second).status_code == 201
    assert {batch.public_id: batch.photo_count for batch in Batch.objects.all()} == {
        first: 3,
        second: 1,
    }


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("notes.jpg", b"just some notes\n" * 20, "This file is not a photo we can read. "),
        ("cut.png", photo_bytes(200, 200)[:400], "The photo is damaged or incomplete"),
        ("big.png", photo_bytes(16, 16) + b"\0" * (20 * MB), "The file is 20.0\xa0MB; "),
        ("wide.png", _wide_png(2049, 16), "The photo is 2049 × 16 pixels; "),
        ("p.webp", photo_bytes(fmt="WEBP"), "WebP files are not accepted by Old-photo repair."),
        ("empty.png", b"", "The file is empty."),
    ],
)
def test_a_bad_photo_is_a_400_with_its_reason_and_stores_nothing_not_even_a_batch(
    client, studio, alice, media_root, name, data, message
):
    login_in_team(client, alice, studio)
    response = _send(client, SimpleUploadedFile(name, data, "image/png"), token=uuid.uuid4())
    assert response.status_code == 400
    assert message in response.json()["error"]
    _nothing_stored(media_root)


def test_a_bad_photo_after_good_ones_leaves_their_batch_as_it_was(
    client, studio, alice, media_root
):
    login_in_team(client, alice, studio)
    token = uuid.uuid4()
    _send(client, photo_upload("good.png"), token=token)
    kept = stored_files(media_root)
    bad = SimpleUploadedFile("bad.jpg", b"hello", "image/jpeg")
    assert _send(client, bad, token=token).status_code == 400
    assert Batch.objects.get().photo_count == 1
    assert stored_files(media_root) == kept


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"token": None}, "This photo names no upload. Reload the page and try again."),
        ({"token": "not-a-token"}, "Enter a valid UUID."),
        ({"photo": None}, "Choose a photo."),
        ({"restoration_type": "9"}, "Damage must be one of 0, 1, 2, not “9”."),
        ({"operation": "sharpen"}, "Select a valid choice. sharpen is not one of"),
    ],
)
def test_bad_fields_are_a_400_with_the_reason(client, studio, alice, media_root, fields, message):
    login_in_team(client, alice, studio)
    arguments = {"photo": photo_upload(), "token": uuid.uuid4(), **fields}
    response = _send(client, arguments.pop("photo"), **arguments)
    assert response.status_code == 400
    assert response.json()["error"].startswith(message)
    _nothing_stored(media_root)


def test_an_upload_keeps_the_restoration_its_first_photo_got(client, studio, alice):
    login_in_team(client, alice, studio)
    token = uuid.uuid4()
    _send(client, photo_upload("a.png"), token=token)
    response = _send(client, photo_upload("b.png"), token=token, operation="scale")
    assert response.status_code == 400
    assert response.json()["error"].startswith("This upload's photos get Old-photo repair.")
    assert Task.objects.count() == 1


def test_an_upload_holds_a_bounded_number_of_photos(client, studio, alice, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_PHOTOS_PER_BATCH", 2)
    login_in_team(client, alice, studio)
    token = uuid.uuid4()
    assert [_send(client, photo_upload(), token=token).status_code for _ in range(3)] == [
        201,
        201,
        400,
    ]
    assert Batch.objects.get().photo_count == 2


def test_another_teams_upload_token_is_a_404_and_stores_nothing(
    client, studio, alice, charlie, media_root
):
    theirs = Batch.objects.create(team=studio, created_by=alice, operation="scale")
    client.force_login(charlie)
    response = _send(client, photo_upload(), token=theirs.public_id, operation="scale")
    assert response.status_code == 404
    assert response.json() == {"error": "This upload is not one of this team's. Reload the page."}
    assert Upload.objects.count() == Task.objects.count() == 0
    assert list(Batch.objects.values_list("team", flat=True)) == [studio.pk]
    assert stored_files(media_root) == []


def test_viewers_get_403_and_nothing_is_stored(client, studio, victor, media_root):
    login_in_team(client, victor, studio)
    response = _send(client, photo_upload(), token=uuid.uuid4())
    assert response.status_code == 403
    assert response.json() == {"error": "Viewers cannot upload photos to this team."}
    _nothing_stored(media_root)


def test_only_signed_in_people_post_and_only_by_post(client, studio, alice):
    assert _send(client, photo_upload(), token=uuid.uuid4()).status_code == 302  # to log in
    login_in_team(client, alice, studio)
    assert client.get(reverse("jobs:upload_photo")).status_code == 405
    assert Batch.objects.count() == 0


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="SQLite takes its write lock at BEGIN (IMMEDIATE), so the two cannot meet at the insert",
)
@pytest.mark.django_db(transaction=True)
def test_two_first_photos_at_once_make_one_batch(studio, alice):
    """Both requests look for the batch, find none and insert it at the same moment (a barrier
    holds each just before its insert): PostgreSQL's unique index makes the second wait for the
    first, and the second then joins the first's batch."""
    token = uuid.uuid4()
    barrier = threading.Barrier(2, timeout=10)
    answers = {}

    def both_insert_together(sender, instance, **kwargs):
        if instance.pk is None:
            barrier.wait()

    def send(name):
        try:
            client = login_in_team(Client(raise_request_exception=False), alice, studio)
            answers[name] = _send(client, photo_upload(name), token=token).status_code
        finally:
            connection.close()

    pre_save.connect(both_insert_together, sender=Batch)
    try:
        threads = [threading.Thread(target=send, args=(name,)) for name in ("a.png", "b.png")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
    finally:
        pre_save.disconnect(both_insert_together, sender=Batch)
    assert answers == {"a.png": 201, "b.png": 201}
    batch = Batch.objects.get()
    assert batch.public_id == token and batch.photo_count == 2
