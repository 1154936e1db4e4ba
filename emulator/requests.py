"""Reading a create: the multipart/form-data body, its fields, and the checks PicWish makes."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from python_multipart import FormParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import Field, File, parse_options_header

from .endpoints import COMMON_PARAMS, Endpoint, peek_image

URL_MAX_LENGTH = 512
# A body this large cannot be a valid create for any endpoint: refuse it without keeping it.
MAX_BODY_BYTES = 64 * 1024 * 1024


class BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class CreateRequest:
    image: bytes | None
    image_url: str | None
    options: dict[str, str]
    sync: bool
    return_type: int


def parse_create(endpoint: Endpoint, content_type: str, body: bytes) -> CreateRequest:
    fields = parse_multipart(content_type, body)
    image, raw_url = fields.get("image_file"), fields.get("image_url")
    if (image is None) == (raw_url is None):
        raise BadRequest(400, "Send exactly one of image_file and image_url.")
    values = {
        name: _text(name, fields[name])
        for name in (*COMMON_PARAMS, *endpoint.params)
        if name in fields
    }
    for name, value in values.items():
        allowed = COMMON_PARAMS.get(name) or endpoint.params[name]
        if value not in allowed:
            shown = ", ".join(repr(v) for v in allowed)
            raise BadRequest(400, f"Invalid {name} {value!r}: expected one of {shown}.")
    if image is not None:
        _check_upload(endpoint, image)
    image_url = None if raw_url is None else _checked_url(_text("image_url", raw_url))
    return CreateRequest(
        image,
        image_url,
        {name: value for name, value in values.items() if name not in COMMON_PARAMS},
        values.get("sync") == "1",
        int(values.get("return_type", "1")),
    )


def parse_multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """Field name -> raw content of a multipart/form-data body (RFC 7578)."""
    kind, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise BadRequest(400, "The body must be multipart/form-data with a boundary.")
    fields: dict[str, bytes] = {}
    ended: list[bool] = []  # on_end is called once the closing boundary is read

    def on_field(field: Field) -> None:
        fields[_name(field.field_name)] = field.value or b""

    def on_file(file: File) -> None:
        file.file_object.seek(0)
        fields[_name(file.field_name)] = file.file_object.read()

    # Files stay in memory: the body already is, and is at most MAX_BODY_BYTES.
    config = {"MAX_MEMORY_FILE_SIZE": MAX_BODY_BYTES + 1}
    try:
        parser = FormParser(
            "multipart/form-data",
            on_field,
            on_file,
            on_end=lambda: ended.append(True),
            boundary=boundary,
            config=config,
        )
        parser.write(body)
        parser.finalize()
    except FormParserError as error:
        raise BadRequest(400, f"The multipart body is malformed: {error}") from None
    if not ended:
        raise BadRequest(400, "The multipart body has no closing boundary.")
    return fields


def _name(raw: bytes | None) -> str:
    return (raw or b"").decode("utf-8", "replace")


def _text(name: str, value: bytes) -> str:
    try:
        return value.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise BadRequest(400, f"{name} is not UTF-8 text.") from None


def _check_upload(endpoint: Endpoint, image: bytes) -> None:
    if not image:
        raise BadRequest(400, "image_file is empty.")
    if len(image) > endpoint.max_bytes:
        raise BadRequest(
            413, f"The file has {len(image)} bytes; this endpoint takes {endpoint.max_bytes}."
        )
    peeked = peek_image(image)
    if peeked and not endpoint.fits(peeked[1], peeked[2]):
        raise BadRequest(
            413,
            f"The image is {peeked[1]} x {peeked[2]} pixels; this endpoint takes at most "
            f"{endpoint.max_width} x {endpoint.max_height}.",
        )


def _checked_url(url: str) -> str:
    parts = urlsplit(url)
    if len(url) > URL_MAX_LENGTH or parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadRequest(
            400, f"image_url must be an http(s) URL of at most {URL_MAX_LENGTH} characters."
        )
    return url
