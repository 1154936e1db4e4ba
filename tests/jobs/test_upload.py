"""Uploads through the plain form (the page without its script): good photos become tasks in
one batch, each bad photo is named with its reason, and bad input alone leaves nothing behind."""

import io
import struct
import uuid
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from restorations.jobs.models import Batch, Task, TaskEvent, Upload
from restorations.jobs.operations import MB
from restorations.jobs.states import State
from tests.factories import login_in_team, photo_bytes, photo_upload, stored_files

pytestmark = pytest.mark.django_db


def _post(client, *files, operation="restoration-old-photo", upload=None, **options):
    data = {"photos": list(files), "operation": operation}
    if upload:
        data["upload"] = upload
    data.update({f"{operation}__{k}": v for k, v in options.items()})
    return client.post(reverse("jobs:task_create"), data)


def _png_header_only(width, height) -> bytes:
    """A PNG that declares width × height but carries a single tiny compressed row."""

    def chunk(kind, body):
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 16))
        + chunk(b"IEND", b"")
    )


def _assert_rejected(response, media_root, *fragments):
    assert response.status_code == 400
    page = response.content.decode()
    assert 'id="photos-errors"' in page or "errorlist" in page
    for fragment in fragments:
        assert fragment in page, page
    assert Upload.objects.count() == 0
    assert Task.objects.count() == 0
    assert Batch.objects.count() == 0
    assert stored_files(media_root) == []


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_a_good_photo_becomes_a_queued_local_task_with_its_original_stored(
    client, studio, alice, media_root
):
    login_in_team(client, alice, studio)
    data = photo_bytes(120, 80)
    response = _post(
        client,
        SimpleUploadedFile("Grandma 1952.png", data, "image/png"),
        restoration_type="1",
        model_type="2",
        change_color="0",
    )
    task = Task.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("jobs:task_detail", args=[task.public_id])
    assert task.team == studio and task.created_by == alice
    assert task.state == State.QUEUED  # the built-in engine needs no sending step
    assert task.engine == "local"
    assert task.options == {"restoration_type": "1", "model_type": "2", "change_color": "0"}
    upload = task.upload
    assert (upload.original_name, upload.width, upload.height, upload.format, upload.bytes) == (
        "Grandma 1952.png",
        120,
        80,
        "PNG",
        len(data),
    )
    # The storage path is built from ids only.
    assert upload.file.name == f"originals/{studio.public_id}/{upload.public_id}.png"
    assert upload.file.read() == data
    assert TaskEvent.objects.filter(task=task, kind="created").count() == 1


def test_several_photos_in_one_upload_go_to_their_batch_page(client, studio, bob):
    login_in_team(client, bob, studio)
    response = _post(client, photo_upload("a.png"), photo_upload("b.png"), operation="scale")
    batch = Batch.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("jobs:batch_detail", args=[batch.public_id])
    assert sorted(batch.tasks.values_list("upload__original_name", flat=True)) == [
        "a.png",
        "b.png",
    ]


def test_the_pages_upload_token_names_the_batch(client, studio, alice):
    login_in_team(client, alice, studio)
    page = client.get(reverse("jobs:task_create"))
    token = page.context["form"].initial["upload"]
    assert f'value="{token}"' in page.content.decode()
    _post(client, photo_upload("a.png"), photo_upload("b.png"), upload=str(token))
    assert str(Batch.objects.get().public_id) == str(token)


def test_a_bad_photo_refuses_only_itself_and_is_named_with_its_reason(
    client, studio, alice, media_root
):
    login_in_team(client, alice, studio)
    response = _post(
        client,
        photo_upload("good.png"),
        SimpleUploadedFile("bad.jpg", b"hello", "image/jpeg"),
        SimpleUploadedFile("empty.png", b"", "image/png"),
        photo_upload("also good.png"),
    )
    batch = Batch.objects.get()
    assert response["Location"] == reverse("jobs:batch_detail", args=[batch.public_id])
    assert sorted(batch.tasks.values_list("upload__original_name", flat=True)) == [
        "also good.png",
        "good.png",
    ]
    page = client.get(response["Location"])
    assert _messages(page) == [
        "2 photos uploaded.",
        "Not uploaded: bad.jpg: This file is not a photo we can read. Upload a photo as JPG, PNG.",
        "Not uploaded: empty.png: The file is empty. Choose a photo file.",
    ]
    assert len(stored_files(media_root)) == 4  # two originals and their thumbnails


def test_one_good_photo_and_one_bad_go_to_the_batch_page_not_the_photos(client, studio, alice):
    login_in_team(client, alice, studio)
    response = _post(
        client, photo_upload("good.png"), SimpleUploadedFile("bad.jpg", b"hello", "image/jpeg")
    )
    assert response["Location"] == reverse(
        "jobs:batch_detail", args=[Batch.objects.get().public_id]
    )


def test_the_same_form_sent_again_joins_its_batch_unless_the_restoration_changed(
    client, studio, alice
):
    login_in_team(client, alice, studio)
    token = str(uuid.uuid4())
    _post(client, photo_upload("a.png"), photo_upload("b.png"), upload=token)
    _post(client, photo_upload("c.png"), photo_upload("d.png"), upload=token)
    _post(client, photo_upload("e.png"), photo_upload("f.png"), upload=token, operation="scale")
    assert sorted(
        (str(batch.public_id) == token, batch.operation, batch.photo_count)
        for batch in Batch.objects.all()
    ) == [(False, "scale", 2), (True, "restoration-old-photo", 4)]


def test_another_teams_upload_token_is_a_404_and_stores_nothing(
    client, studio, alice, charlie, media_root
):
    theirs = Batch.objects.create(team=studio, created_by=alice, operation="scale")
    client.force_login(charlie)
    response = _post(client, photo_upload(), operation="scale", upload=str(theirs.public_id))
    assert response.status_code == 404
    assert Upload.objects.count() == Task.objects.count() == 0
    assert stored_files(media_root) == []


def test_only_bad_photos_refuse_the_upload_naming_each(client, studio, alice, media_root):
    login_in_team(client, alice, studio)
    response = _post(
        client,
        SimpleUploadedFile("bad.jpg", b"hello", "image/jpeg"),
        SimpleUploadedFile("cut.png", photo_bytes(200, 200)[:300], "image/png"),
    )
    _assert_rejected(response, media_root, "bad.jpg: This file", "cut.png: The photo is damaged")


def test_empty_file(client, studio, alice, media_root):
    login_in_team(client, alice, studio)
    response = _post(client, SimpleUploadedFile("empty.png", b"", "image/png"))
    _assert_rejected(response, media_root, "empty.png: The file is empty.")


def test_text_file_named_jpg(client, studio, alice, media_root):
    login_in_team(client, alice, studio)
    response = _post(
        client, SimpleUploadedFile("notes.jpg", b"just some notes\n" * 20, "image/jpeg")
    )
    _assert_rejected(response, media_root, "not a photo we can read")


def test_truncated_png(client, studio, alice, media_root):
    login_in_team(client, alice, studio)
    data = photo_bytes(200, 200)
    response = _post(client, SimpleUploadedFile("cut.png", data[: len(data) // 2], "image/png"))
    _assert_rejected(response, media_root, "damaged or incomplete")


def test_decompression_bomb_png(client, studio, alice, media_root):
    login_in_team(client, alice, studio)
    response = _post(
        client, SimpleUploadedFile("bomb.png", _png_header_only(30000, 30000), "image/png")
    )
    _assert_rejected(response, media_root, "pixels", "2048 × 2048")


def test_file_over_the_operations_size_limit(client, studio, alice, media_root, settings):
    login_in_team(client, alice, studio)
    big = photo_bytes(16, 16) + b"\0" * (20 * MB)  # old-photo repair takes less than 20 MB
    response = _post(client, SimpleUploadedFile("big.png", big, "image/png"))
    _assert_rejected(response, media_root, "20.0\xa0MB")


def test_image_over_the_operations_pixel_limit(client, studio, alice, media_root):
    login_in_team(client, alice, studio)
    buffer = io.BytesIO()
    Image.new("L", (2049, 16)).save(buffer, "PNG")
    response = _post(client, SimpleUploadedFile("wide.png", buffer.getvalue(), "image/png"))
    _assert_rejected(response, media_root, "2049 × 16", "2048 × 2048")


def test_svg(client, studio, alice, media_root):
    login_in_team(client, alice, studio)
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
    response = _post(client, SimpleUploadedFile("drawing.svg", svg, "image/svg+xml"))
    _assert_rejected(response, media_root, "SVG")


def test_format_the_operation_does_not_take(client, studio, alice, media_root):
    login_in_team(client, alice, studio)
    response = _post(client, SimpleUploadedFile("p.webp", photo_bytes(fmt="WEBP"), "image/webp"))
    _assert_rejected(response, media_root, "WebP files are not accepted")


def test_option_the_operation_does_not_have(client, studio, alice, media_root):
    login_in_team(client, alice, studio)
    response = _post(client, photo_upload(), restoration_type="9")
    assert response.status_code == 400
    assert "Damage must be one of" in response.content.decode()
    assert Task.objects.count() == 0 and stored_files(media_root) == []


def test_hostile_file_name_is_stored_safely_and_shown_escaped(client, studio, alice, media_root):
    login_in_team(client, alice, studio)
    name = "..\\../etc/<img src=x onerror=alert(1)>\x00\x1b[31m\nphoto.png"
    response = _post(client, photo_upload(name))
    task = Task.objects.get()
    assert response.status_code == 302
    assert task.upload.original_name == "<img src=x onerror=alert(1)>[31mphoto.png"
    assert task.upload.file.name.startswith(f"originals/{studio.public_id}/")
    assert [p.name for p in stored_files(media_root)] == [
        f"{task.upload.public_id}.png",
        f"{task.upload.public_id}.webp",  # its thumbnail
    ]
    page = client.get(reverse("jobs:task_detail", args=[task.public_id])).content.decode()
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page


def test_viewer_cannot_upload(client, studio, victor, media_root):
    login_in_team(client, victor, studio)
    assert client.get(reverse("jobs:task_create")).status_code == 403
    assert _post(client, photo_upload()).status_code == 403
    assert Task.objects.count() == 0 and stored_files(media_root) == []
