"""Reading creates: the multipart body, each endpoint's values and limits (400, 404, 413)."""

import pytest

from emulator import MB
from emulator.requests import BadRequest, parse_multipart
from tests.emulator.support import PHOTO, create, error_of, poll
from tests.factories import photo_bytes


def test_multipart_parser_keeps_binary_content_intact():
    binary = b"\r\n--not-the-boundary\r\n\x00\xff"
    body = (
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="sync"\r\n\r\n1\r\n'
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="image_file"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + binary + b"\r\n--XyZ--\r\nepilogue"
    )
    fields = parse_multipart('multipart/form-data; boundary="XyZ"', body)
    assert fields == {"sync": b"1", "image_file": binary}
    with pytest.raises(BadRequest, match="closing boundary"):
        parse_multipart("multipart/form-data; boundary=XyZ", body.split(b"\r\n--XyZ--")[0])
    with pytest.raises(BadRequest, match="malformed"):
        parse_multipart("multipart/form-data; boundary=XyZ", b"--XyZ\r\nno colon\r\n\r\n")
    with pytest.raises(BadRequest, match="boundary"):
        parse_multipart("multipart/form-data", body)


@pytest.mark.parametrize(
    ("endpoint", "with_file", "fields", "named"),
    [
        ("scale", False, {"sync": 0}, "image_file"),
        ("scale", True, {"image_url": "http://127.0.0.1:9/p.png"}, "image_url"),
        ("restoration-old-photo", True, {"restoration_type": 3}, "restoration_type"),
        ("restoration-old-photo", True, {"change_color": "yes"}, "change_color"),
        ("scale", True, {"scale_factor": 3}, "scale_factor"),
        ("scale", True, {"type": "sharp"}, "type"),
        ("scale-pro", True, {"type": 2}, "type"),
        ("colorization", True, {"format": "gif"}, "format"),
        ("correction", True, {"type": 5}, "type"),
        ("scale", True, {"return_type": 3}, "return_type"),
        ("scale", True, {"sync": 2}, "sync"),
        ("scale", False, {"image_url": "ftp://127.0.0.1/p.png"}, "image_url"),
        ("scale", False, {"image_url": "http://127.0.0.1/" + "a" * 512}, "image_url"),
    ],
)
def test_missing_images_and_bad_values_are_400(
    emulator, client, endpoint, with_file, fields, named
):
    response = create(client, endpoint, PHOTO if with_file else None, **fields)
    assert error_of(response) == (400, 400)
    assert named in response.json()["message"]
    assert emulator.counters()["tasks"] == {}


def test_a_body_that_is_not_multipart_is_400(client):
    response = client.post("/api/tasks/visual/scale", data={"image_url": "http://127.0.0.1/a"})
    assert error_of(response) == (400, 400)


def test_an_unknown_endpoint_is_404(client):
    assert error_of(create(client, "remove-background")) == (404, 404)
    assert error_of(poll(client, "some-task", "remove-background")) == (404, 404)


@pytest.mark.slow
def test_files_over_the_endpoint_byte_limit_are_413(emulator, client):
    # The size is checked before decoding, so padding a real photo is enough.
    oversized = PHOTO + b"\0" * (21 * MB - len(PHOTO))
    response = create(client, "restoration-old-photo", oversized)
    assert error_of(response) == (413, 413)
    assert str(20 * MB - 1) in response.json()["message"]
    assert create(client, "scale", oversized).status_code == 200  # scale takes 30 MB
    assert emulator.counters()["create"] == {"200": 1, "413": 1}


def test_images_over_the_pixel_limit_are_413(client):
    assert error_of(create(client, "restoration-old-photo", photo_bytes(2049, 8))) == (413, 413)
    assert create(client, "restoration-old-photo", photo_bytes(2048, 8)).status_code == 200
