"""Narrow unit tests of the PicWish client's parsing, with httpx's MockTransport.

The client's behaviour against a real server over loopback is covered by the integration tests
against the project's emulator (tests/jobs/test_picwish_integration.py).
"""

import base64
import hashlib
import io
import json
import time

import httpx
import pytest

from restorations.picwish import client as picwish


def _client(handler) -> picwish.PicWishClient:
    return picwish.PicWishClient(
        "https://pw.test/", "k-123", transport=httpx.MockTransport(handler)
    )


def _json(status: int, body: dict) -> httpx.Response:
    return httpx.Response(status, content=json.dumps(body).encode())


def test_create_sends_the_key_the_file_and_asks_for_polling():
    seen = {}

    def handler(request: httpx.Request):
        seen["url"] = str(request.url)
        seen["key"] = request.headers["X-API-KEY"]
        seen["body"] = request.read()
        return _json(200, {"status": 200, "message": "success", "data": {"task_id": "t-1"}})

    created = _client(handler).create(
        "scale", {"type": "face", "scale_factor": ""}, io.BytesIO(b"PIXELS"), "a.png"
    )
    assert created.task_id == "t-1"
    assert seen["url"] == "https://pw.test/api/tasks/visual/scale"
    assert seen["key"] == "k-123"
    body = seen["body"]
    assert b'name="image_file"; filename="a.png"' in body and b"PIXELS" in body
    assert b'name="type"\r\n\r\nface' in body
    assert b'name="sync"\r\n\r\n0' in body and b'name="return_type"\r\n\r\n1' in body
    assert b'name="scale_factor"' not in body  # empty means "automatic": not sent


@pytest.mark.parametrize(
    ("http_status", "body_status", "error"),
    [
        (400, 400, picwish.BadRequest),
        (401, 401, picwish.Unauthorized),
        (404, 404, picwish.NotFound),
        (413, 413, picwish.TooLarge),
        (429, 429, picwish.RateLimited),
        (500, 500, picwish.ServerError),
        (503, None, picwish.ServerError),
        (200, 401, picwish.Unauthorized),  # the error only in the body
        (200, 429, picwish.RateLimited),
        (200, 500, picwish.ServerError),
    ],
)
def test_both_error_styles_raise_the_same_errors(http_status, body_status, error):
    body = {"message": "nope"} if body_status is None else {"status": body_status, "msg": "nope"}
    client = _client(lambda request: _json(http_status, body))
    with pytest.raises(error) as raised:
        client.poll("scale", "t-1")
    assert raised.value.status == (body_status or http_status)
    assert raised.value.message == "nope"


def test_an_unreadable_body_is_a_server_error():
    client = _client(lambda request: httpx.Response(200, content=b"<html>gateway</html>"))
    with pytest.raises(picwish.ServerError):
        client.poll("scale", "t-1")


def test_poll_reads_state_progress_times_and_image():
    data = {
        "task_id": "t-1",
        "state": 1,
        "state_detail": "Complete",
        "progress": 100,
        "return_type": 1,
        "created_at": 1698387304,
        "processed_at": 1698387303,
        "completed_at": 1698387307,
        "image": "https://cdn.test/r.jpg",
        "image_width": 20,
        "image_height": 10,
    }
    polled = _client(lambda r: _json(200, {"status": 200, "data": data})).poll("scale", "t-1")
    assert (polled.state, polled.progress, polled.image) == (1, 100, "https://cdn.test/r.jpg")
    assert polled.completed_at.timestamp() == 1698387307
    assert (polled.image_width, polled.image_height) == (20, 10)


def test_poll_reads_the_file_field_some_endpoints_use():
    data = {"task_id": "t-1", "state": 1, "progress": 100, "file": "https://cdn.test/r.png"}
    polled = _client(lambda r: _json(200, {"status": 200, "data": data})).poll("scale", "t-1")
    assert polled.image == "https://cdn.test/r.png"


def test_a_failed_task_is_a_success_answer_with_a_negative_state():
    data = {"task_id": "t-1", "state": -8, "state_detail": "timeout", "progress": 40}
    polled = _client(lambda r: _json(200, {"status": 200, "data": data})).poll("scale", "t-1")
    assert polled.state == -8 and polled.state_detail == "timeout"


def test_base64_results_are_decoded_in_slices_and_hashed():
    payload = bytes(range(256)) * 5000
    out = io.BytesIO()
    downloaded = picwish.download(
        base64.b64encode(payload).decode(), picwish.BASE64_RESULT, out, max_bytes=len(payload)
    )
    assert out.getvalue() == payload
    assert downloaded == picwish.Downloaded(hashlib.sha256(payload).hexdigest(), len(payload))


def test_a_result_over_the_byte_cap_stops_there():
    payload = bytes(1000)
    out = io.BytesIO()
    with pytest.raises(picwish.ResultTooLarge):
        picwish.download(
            base64.b64encode(payload).decode(), picwish.BASE64_RESULT, out, max_bytes=999
        )
    assert len(out.getvalue()) <= 999


def test_invalid_base64_is_a_server_error():
    with pytest.raises(picwish.ServerError):
        picwish.download("@@@@", picwish.BASE64_RESULT, io.BytesIO(), max_bytes=1024)


def test_connection_refused_means_nothing_was_received():
    def refuse(request):
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(picwish.TransportError) as raised:
        _client(refuse).poll("scale", "t-1")
    assert raised.value.maybe_received is False


def test_a_lost_answer_may_have_been_received():
    def time_out(request):
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(picwish.TransportError) as raised:
        _client(time_out).create("scale", {}, io.BytesIO(b"x"), "a.png")
    assert raised.value.maybe_received is True


class _SlowFile(io.BytesIO):
    """A photo read from storage that delivers each chunk slowly."""

    def read(self, size=-1):
        time.sleep(0.05)
        return super().read(min(size, 1024) if size and size > 0 else 1024)


def test_an_upload_slower_than_its_budget_is_stopped(monkeypatch):
    monkeypatch.setattr(picwish, "UPLOAD_SECONDS", 0.2)

    def handler(request):
        request.read()  # the transport sends the whole body, as a real one would
        return _json(200, {"status": 200, "data": {"task_id": "t-1"}})

    started = time.monotonic()
    with pytest.raises(picwish.TransportError) as raised:
        _client(handler).create("scale", {}, _SlowFile(bytes(64 * 1024)), "p.png")
    assert not raised.value.maybe_received  # PicWish never saw a whole request
    assert time.monotonic() - started < 2.0


def test_the_longest_create_is_bounded_by_the_timeouts_and_the_upload_budget():
    t = picwish.TIMEOUT
    assert t.pool + t.connect + picwish.UPLOAD_SECONDS + t.read == picwish.MAX_CREATE_SECONDS
    # PicWish's largest photo (30 MB) fits the upload budget at a slow 256 kB/s.
    assert picwish.UPLOAD_SECONDS >= 30 * 1024 / 256
