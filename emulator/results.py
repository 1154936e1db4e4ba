"""A successful task's result: made by the built-in engine, served by URL or base64, expiring.

The result is computed as soon as the task is created, on the emulator's thread pool; the task's
timeline, not this work, decides when a poll sees it.
"""

from __future__ import annotations

import base64
import http.client
import logging
import time
import urllib.request
from dataclasses import dataclass

from restorations.engines import local

from .endpoints import ENDPOINTS, MB, peek_image
from .states import DOWNLOAD_FAILED, FAILED, INVALID_IMAGE, STATE_DETAILS, URL_FILE_TOO_LARGE

log = logging.getLogger(__name__)

URL_MAX_BYTES = 30 * MB
URL_TIMEOUT = 10.0
CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}


@dataclass(frozen=True)
class JobResult:
    done_at: float
    result: local.LocalResult | None = None
    failure: int | None = None


class TaskFailure(Exception):
    def __init__(self, state: int) -> None:
        super().__init__(STATE_DETAILS[state])
        self.state = state


def produce_result(
    endpoint: str, options: dict[str, str], image: bytes | None, image_url: str | None
) -> JobResult:
    try:
        data = image if image is not None else _fetch(image_url or "")
        return JobResult(time.time(), result=_run_engine(endpoint, options, data))
    except TaskFailure as failure:
        return JobResult(time.time(), failure=failure.state)
    except Exception:
        log.exception("The local engine failed on a %s task", endpoint)
        return JobResult(time.time(), failure=FAILED)


def _fetch(url: str) -> bytes:
    # PicWish fetches the URL itself, so no proxy from this process's environment applies.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=URL_TIMEOUT) as response:
            data = response.read(URL_MAX_BYTES + 1)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise TaskFailure(DOWNLOAD_FAILED) from exc
    if len(data) > URL_MAX_BYTES:
        raise TaskFailure(URL_FILE_TOO_LARGE)
    return data


def _run_engine(endpoint_name: str, options: dict[str, str], data: bytes) -> local.LocalResult:
    endpoint = ENDPOINTS[endpoint_name]
    peeked = peek_image(data)
    if peeked is None:
        raise TaskFailure(INVALID_IMAGE)
    fmt, width, height = peeked
    if not endpoint.takes_format(fmt) or not endpoint.fits(width, height):
        raise TaskFailure(INVALID_IMAGE)
    try:
        return local.run(data, endpoint_name, options, source_format=fmt)
    except local.CorruptImage as exc:
        raise TaskFailure(INVALID_IMAGE) from exc


def image_field(base_url: str, return_type: int, token: str, result: local.LocalResult) -> str:
    """The poll body's `image`: base64 with return_type 2, else the result's URL."""
    if return_type == 2:
        return base64.b64encode(result.data).decode("ascii")
    return f"{base_url}/results/{token}"


def has_expired(expire_result: bool, completed_at: float, now: float, result_ttl: float) -> bool:
    return expire_result or now - completed_at > result_ttl
