"""The PicWish HTTP client: the one place that speaks PicWish's task protocol.

Create (`POST /api/tasks/visual/<endpoint>`), poll (`GET .../<task_id>`) and download the result.
Errors come in two styles, an HTTP status or a non-200 `status` in a 200 body; both raise the
same typed exceptions, so callers decide on the meaning and never on the transport.
"""

import base64
import binascii
import hashlib
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import BinaryIO

import httpx

TIMEOUT = httpx.Timeout(connect=5.0, read=30.0, write=60.0, pool=5.0)
# httpx's timeouts bound each network operation, not a whole request: a create also stops once
# its upload has taken this long (a 30 MB photo, PicWish's largest, at 256 kB/s).
UPLOAD_SECONDS = 120.0
# The longest a create can take: a connection, the upload, and the wait for the answer.
MAX_CREATE_SECONDS = TIMEOUT.pool + TIMEOUT.connect + UPLOAD_SECONDS + TIMEOUT.read
DOWNLOAD_CHUNK = 256 * 1024
URL_RESULT, BASE64_RESULT = 1, 2


class PicWishError(Exception):
    """An answer that is not a success. `status` is the HTTP or body status that said so."""

    def __init__(self, status: int | None, message: str, raw: str = ""):
        super().__init__(f"{status}: {message}" if status else message)
        self.status = status
        self.message = message
        self.raw = raw


class BadRequest(PicWishError):  # 400: a parameter is wrong or missing
    pass


class Unauthorized(PicWishError):  # 401: the key is wrong or the service is not enabled
    pass


class NotFound(PicWishError):  # 404: unknown URL or task id (e.g. after PicWish forgot it)
    pass


class TooLarge(PicWishError):  # 413: the file is over PicWish's limit
    pass


class RateLimited(PicWishError):  # 429: over the account's requests per second
    pass


class ServerError(PicWishError):  # 5xx, an unknown status, or a body we cannot read
    pass


class ResultTooLarge(PicWishError):
    """The result is larger than the caller accepts; the download stopped there."""


class TransportError(PicWishError):
    """No answer: connection refused, dropped or timed out.

    `maybe_received` is True when the request may have reached PicWish before the answer was
    lost; for a create that means an upstream task may exist that we know nothing of.
    """

    def __init__(self, message: str, *, maybe_received: bool):
        super().__init__(None, message)
        self.maybe_received = maybe_received


_BY_STATUS = {400: BadRequest, 401: Unauthorized, 404: NotFound, 413: TooLarge, 429: RateLimited}


@dataclass(frozen=True)
class Created:
    task_id: str
    raw: str


@dataclass(frozen=True)
class Polled:
    task_id: str
    state: int
    state_detail: str
    progress: int
    return_type: int
    created_at: datetime | None
    processed_at: datetime | None
    completed_at: datetime | None
    image: str | None  # a URL, or base64 when return_type is 2
    image_width: int | None
    image_height: int | None
    raw: str


@dataclass(frozen=True)
class Downloaded:
    sha256: str
    size: int


def _timestamp(value) -> datetime | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return datetime.fromtimestamp(seconds, UTC) if seconds > 0 else None


def _int_or_none(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _check(response: httpx.Response) -> dict:
    """The `data` of a success, else the typed error for the HTTP or the body status."""
    raw = response.text
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or body.get("msg") or response.reason_phrase or "")
    status = response.status_code
    if status == 200:
        body_status = _int_or_none(body.get("status"))
        if body_status is not None and body_status != 200:
            status = body_status  # HTTP 200 carrying an error in the body
        elif not isinstance(body.get("data"), dict):
            raise ServerError(status, "PicWish answered without data", raw)
    if status != 200:
        raise _BY_STATUS.get(status, ServerError)(status, message, raw)
    return body["data"]


class PicWishClient:
    """One account's client. `transport` lets narrow unit tests plug in httpx.MockTransport."""

    def __init__(self, base_url: str, api_key: str, *, timeout=TIMEOUT, transport=None):
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers={"X-API-KEY": api_key},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "PicWishClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def create(
        self,
        endpoint: str,
        options: dict[str, str],
        image: BinaryIO,
        filename: str,
        *,
        return_type: int = URL_RESULT,
    ) -> Created:
        fields = {k: v for k, v in options.items() if v != ""}
        fields.update(sync="0", return_type=str(return_type))
        upload = _BoundedUpload(image, UPLOAD_SECONDS)
        try:
            response = self._send(
                "POST",
                f"/api/tasks/visual/{endpoint}",
                data=fields,
                files={"image_file": (filename, upload, "application/octet-stream")},
            )
        except _UploadTooSlow as exc:
            raise TransportError(str(exc), maybe_received=False) from exc
        data = _check(response)
        task_id = str(data.get("task_id") or "")
        if not task_id:
            raise ServerError(200, "PicWish answered without a task id", response.text)
        return Created(task_id, response.text)

    def poll(self, endpoint: str, task_id: str) -> Polled:
        response = self._send("GET", f"/api/tasks/visual/{endpoint}/{task_id}")
        data = _check(response)
        state = _int_or_none(data.get("state"))
        if state is None:
            raise ServerError(200, "PicWish answered without a state", response.text)
        return Polled(
            task_id=str(data.get("task_id") or task_id),
            state=state,
            state_detail=str(data.get("state_detail") or "")[:200],
            progress=max(0, min(100, _int_or_none(data.get("progress")) or 0)),
            return_type=_int_or_none(data.get("return_type")) or URL_RESULT,
            created_at=_timestamp(data.get("created_at")),
            processed_at=_timestamp(data.get("processed_at")),
            completed_at=_timestamp(data.get("completed_at")),
            image=data.get("image") or data.get("file") or None,
            image_width=_int_or_none(data.get("image_width")),
            image_height=_int_or_none(data.get("image_height")),
            raw=response.text,
        )

    def _send(self, method: str, url: str, **kwargs) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransportError(f"could not reach PicWish: {exc}", maybe_received=False) from exc
        except httpx.TransportError as exc:
            raise TransportError(f"PicWish did not answer: {exc}", maybe_received=True) from exc


class _UploadTooSlow(Exception):
    pass


class _BoundedUpload:
    """A file whose reads fail once `seconds` have passed since the first: httpx reads the
    upload from it as it sends, so this bounds the upload's total time."""

    def __init__(self, file: BinaryIO, seconds: float):
        self._file, self._seconds, self._started = file, seconds, None

    def read(self, size: int = -1) -> bytes:
        now = time.monotonic()
        self._started = self._started or now
        if now - self._started > self._seconds:
            raise _UploadTooSlow(f"the upload took longer than {self._seconds:.0f} s")
        return self._file.read(size)

    def __getattr__(self, name):  # seek, tell, name, ...: httpx sizes and rewinds the file
        return getattr(self._file, name)


def download(image: str, return_type: int, destination: BinaryIO, *, max_bytes: int) -> Downloaded:
    """Write a result to `destination` as PicWish served it, chunk by chunk; raises
    ResultTooLarge, having written at most `max_bytes`, for a larger result."""
    digest, size = hashlib.sha256(), 0
    for chunk in _result_chunks(image, return_type):
        size += len(chunk)
        if size > max_bytes:
            raise ResultTooLarge(200, f"the result is over {max_bytes} bytes")
        destination.write(chunk)
        digest.update(chunk)
    if size == 0:
        raise ServerError(200, "the result is empty")
    return Downloaded(digest.hexdigest(), size)


def _result_chunks(image: str, return_type: int):
    if return_type == BASE64_RESULT:
        yield from _base64_chunks(image)
        return
    try:
        # The result URL is PicWish's storage, not the API: no key is sent there.
        with httpx.stream("GET", image, timeout=TIMEOUT) as response:
            if response.status_code != 200:
                error = NotFound if response.status_code in (403, 404, 410) else ServerError
                raise error(response.status_code, "the result could not be downloaded")
            yield from response.iter_bytes(DOWNLOAD_CHUNK)
    except httpx.TransportError as exc:
        raise TransportError(f"result download failed: {exc}", maybe_received=True) from exc


def _base64_chunks(text: str):
    """Decode base64 a slice at a time (slices of a multiple of 4 characters)."""
    text = "".join(text.split())
    if text.startswith("data:"):
        text = text.partition(",")[2]
    step = DOWNLOAD_CHUNK * 4 // 3 // 4 * 4
    try:
        for start in range(0, len(text), step):
            yield base64.b64decode(text[start : start + step], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ServerError(200, f"the base64 result is invalid: {exc}") from exc
