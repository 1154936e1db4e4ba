"""Fetching a finished PicWish task's result into the project's storage (102 → 1).

The poll that saw the task done stored the result's URL (or base64), return type and reported
size as columns. Results are capped: at most RESULT_MAX_BYTES, and at most as many pixels as
Pillow opens without calling the file a decompression bomb; a larger one fails the task at
-109 instead of being downloaded again. Other download failures are retried until the URL
expires (-103).
"""

import tempfile

from django.core.files import File
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from restorations.engines.formats import EXTENSIONS
from restorations.jobs import services, transitions
from restorations.jobs.models import EventKind, Task
from restorations.jobs.states import State
from restorations.picwish import client, leases

RESULT_MAX_BYTES = 200 * 1024 * 1024
# Pillow refuses to open images above twice its MAX_IMAGE_PIXELS (about 179 megapixels, e.g.
# 13,000 × 13,000) as decompression bombs; the cap is that limit.
RESULT_MAX_PIXELS = 2 * Image.MAX_IMAGE_PIXELS


def fetch(task_pk: int, lease_token: str) -> None:
    task = leases.holding(task_pk, lease_token)
    if task is not None and task.state == State.SAVING_RESULT:
        _fetch(task)


def _fail(task: Task, code: int, message: str) -> None:
    transitions.move(
        task,
        code,
        expect=State.SAVING_RESULT,
        message=message,
        where={"lease_expires_at": task.lease_expires_at},
    )


def _too_large(width: int | None, height: int | None) -> bool:
    return bool(width and height and width * height > RESULT_MAX_PIXELS)


def _fetch(task: Task) -> None:
    if not task.upstream_result:
        _fail(task, State.EMPTY_RESULT, "PicWish reported success without a result.")
        return
    width, height = task.upstream_result_width, task.upstream_result_height
    if _too_large(width, height):
        _fail(task, State.RESULT_TOO_LARGE, f"PicWish reported a {width} × {height} result.")
        return
    with tempfile.TemporaryFile() as buffer:
        try:
            downloaded = client.download(
                task.upstream_result,
                task.upstream_result_type or client.URL_RESULT,
                buffer,
                max_bytes=RESULT_MAX_BYTES,
            )
        except client.ResultTooLarge as error:
            _fail(task, State.RESULT_TOO_LARGE, f"The result is too large: {error.message}.")
            return
        except client.PicWishError as error:
            _fetch_failed(task, error)
            return
        buffer.seek(0)
        try:
            with Image.open(buffer) as result:
                width, height, fmt = result.width, result.height, result.format
        except Image.DecompressionBombError:
            width = height = None
            fmt = ""
        except (UnidentifiedImageError, OSError):
            _fail(task, State.EMPTY_RESULT, "PicWish's result is not an image.")
            return
        if not fmt or _too_large(width, height):
            _fail(task, State.RESULT_TOO_LARGE, "The result has more pixels than can be stored.")
            return
        buffer.seek(0)
        services.store_result(
            task,
            File(buffer),
            extension=EXTENSIONS.get(fmt, ".bin"),
            sha256=downloaded.sha256,
            size=downloaded.size,
            width=width,
            height=height,
            fmt=fmt,
            where={"lease_expires_at": task.lease_expires_at},
        )


def _fetch_failed(task: Task, error: client.PicWishError) -> None:
    expired = task.result_url_expires_at and timezone.now() >= task.result_url_expires_at
    if isinstance(error, client.NotFound) or expired:
        _fail(task, State.RESULT_EXPIRED, f"The result could not be fetched: {error}")
        return
    faults = task.fault_count + 1
    transitions.note(task, EventKind.ERROR, f"Fetching the result failed: {error}; trying again")
    leases.release(task, next_poll_in=leases.backoff(faults), fault_count=faults)
