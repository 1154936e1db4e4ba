"""Fetching a result: it is read from the columns the poll stored, and capped in bytes and
pixels, so an oversized result fails once with a clear state instead of being fetched again."""

import base64
import io
import struct
import zlib
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image

from restorations.jobs.models import Engine, Task
from restorations.jobs.states import State
from restorations.picwish import client, fetch, leases
from tests.factories import photo_bytes, scale_tasks

pytestmark = pytest.mark.django_db


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG whose header declares `width` × `height` pixels (a decompression bomb's header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b"")


def _saving(team, user, result: str, **columns) -> tuple[Task, str]:
    """A PicWish task the poll saw finished, held by a fetch's lease."""
    [task] = scale_tasks(team, user, 1)
    Task.objects.filter(pk=task.pk).update(
        engine=Engine.PICWISH,
        state=State.SAVING_RESULT,
        upstream_result=result,
        result_url_expires_at=timezone.now() + timedelta(hours=1),
        last_response="",  # the fetch needs nothing from the raw answer
        **columns,
    )
    lease = timezone.now() + timedelta(seconds=60)
    assert leases.claim(task.pk, State.SAVING_RESULT, lease=lease)
    return task, lease.isoformat()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_the_result_comes_from_the_columns_the_poll_stored(studio, alice):
    data = photo_bytes(40, 30)
    task, lease = _saving(studio, alice, _b64(data), upstream_result_type=client.BASE64_RESULT)
    fetch.fetch(task.pk, lease)
    task.refresh_from_db()
    assert task.state == State.COMPLETED, task.failure_message
    assert (task.result_width, task.result_height, task.result_bytes) == (40, 30, len(data))


def test_a_result_over_the_pixel_cap_fails_once_as_too_large(studio, alice):
    bomb = _png_declaring(20_000, 20_000)
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(bomb))  # what made the fetch crash and retry for an hour
    task, lease = _saving(studio, alice, _b64(bomb), upstream_result_type=client.BASE64_RESULT)
    fetch.fetch(task.pk, lease)
    task.refresh_from_db()
    assert task.state == State.RESULT_TOO_LARGE and not task.result
    assert task.finished_at is not None and task.next_poll_at is None


def test_a_result_reported_over_the_pixel_cap_is_not_downloaded(studio, alice):
    side = int(fetch.RESULT_MAX_PIXELS**0.5) + 1
    # Nothing listens there: a download would fail as a transport error and be retried.
    task, lease = _saving(
        studio,
        alice,
        "http://127.0.0.1:9/result.png",
        upstream_result_width=side,
        upstream_result_height=side,
    )
    fetch.fetch(task.pk, lease)
    task.refresh_from_db()
    assert task.state == State.RESULT_TOO_LARGE
    assert "reported" in task.failure_message


def test_a_result_over_the_byte_cap_fails_as_too_large(studio, alice, monkeypatch):
    data = photo_bytes(40, 30)
    monkeypatch.setattr(fetch, "RESULT_MAX_BYTES", len(data) - 1)
    task, lease = _saving(studio, alice, _b64(data), upstream_result_type=client.BASE64_RESULT)
    fetch.fetch(task.pk, lease)
    task.refresh_from_db()
    assert task.state == State.RESULT_TOO_LARGE and not task.result


def test_a_fetch_that_lost_its_lease_stores_nothing(studio, alice, media_root):
    data = photo_bytes(40, 30)
    task, lease = _saving(studio, alice, _b64(data), upstream_result_type=client.BASE64_RESULT)
    Task.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() + timedelta(hours=1))
    fetch.fetch(task.pk, lease)  # another worker holds it now
    task.refresh_from_db()
    assert task.state == State.SAVING_RESULT and not task.result
