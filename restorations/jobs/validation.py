"""Checks an uploaded photo against an operation's limits before anything is stored.

The order matters: cheap checks on the declared header come before any pixel is decoded, so a
decompression bomb or an oversized image is refused without allocating its pixels.
"""

import hashlib
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import PurePosixPath

from django.core.exceptions import ValidationError
from django.template.defaultfilters import filesizeformat
from PIL import Image, UnidentifiedImageError

from restorations.engines.formats import EXTENSIONS
from restorations.jobs.operations import OperationSpec

FORMAT_NAMES = {"JPEG": "JPG", "PNG": "PNG", "WEBP": "WebP", "BMP": "BMP", "TIFF": "TIFF"}
# What browsers call each format (a file's `type`), and its usual extensions: the upload page's
# script checks a file's format by these before sending it.
MIME_TYPES = {
    "JPEG": ("image/jpeg", "image/pjpeg"),
    "PNG": ("image/png",),
    "WEBP": ("image/webp",),
    "BMP": ("image/bmp", "image/x-ms-bmp"),
    "TIFF": ("image/tiff",),
}
FILE_EXTENSIONS = {
    "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "PNG": (".png",),
    "WEBP": (".webp",),
    "BMP": (".bmp",),
    "TIFF": (".tif", ".tiff"),
}


@dataclass(frozen=True)
class CheckedImage:
    format: str  # Pillow's name
    width: int
    height: int
    bytes: int
    sha256: str

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.format]


def clean_file_name(name: str) -> str:
    """A display name: no folders, no control characters, at most 200 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    printable = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    printable = printable.lstrip(".") or "photo"
    if len(printable) > 200:
        suffix = PurePosixPath(printable).suffix[:10]
        printable = printable[: 200 - len(suffix)] + suffix
    return printable


def _error(message: str, code: str, **params) -> ValidationError:
    return ValidationError(message, code=code, params=params)


def allowed_formats(spec: OperationSpec) -> str:
    return ", ".join(sorted(FORMAT_NAMES[f] for f in spec.formats))


# The refusals the upload page's script makes itself are these same sentences, with the
# photo's figures filled in (browser_limits), so the browser and the server say one thing.
def too_large_message(size: str, spec: OperationSpec) -> str:
    return (
        f"The file is {size}; {spec.label} accepts up to {filesizeformat(spec.max_bytes)}. "
        "Save it smaller or as JPG and try again."
    )


def not_accepted_message(format_name: str, spec: OperationSpec) -> str:
    allowed = allowed_formats(spec)
    return f"{format_name} files are not accepted by {spec.label}. Upload a photo as {allowed}."


def not_image_message(spec: OperationSpec) -> str:
    return f"This file is not a photo we can read. Upload a photo as {allowed_formats(spec)}."


def svg_message(spec: OperationSpec) -> str:
    return f"SVG drawings are not supported. Upload a photo as {allowed_formats(spec)}."


def too_many_pixels_message(width, height, spec: OperationSpec) -> str:
    return (
        f"The photo is {width} × {height} pixels; {spec.label} accepts up to "
        f"{spec.max_width} × {spec.max_height}. Scale it down and try again."
    )


EMPTY_MESSAGE = "The file is empty. Choose a photo file."


def browser_limits(specs) -> dict:
    """Each operation's limits, price and refusals for the upload page's script, which checks
    type, size and pixels before sending (placeholders in braces: {size}, {format}, {width},
    {height}). Built from the same specs and sentences as the server's checks."""
    operations = {
        spec.operation.value: {
            "label": spec.label,
            "formats": sorted(spec.formats),
            "types": {t: f for f in spec.formats for t in MIME_TYPES[f]},
            "extensions": {e: f for f in spec.formats for e in FILE_EXTENSIONS[f]},
            "max_bytes": spec.max_bytes,
            "max_width": spec.max_width,
            "max_height": spec.max_height,
            "credits": spec.credits.as_dict(),
            "messages": {
                "empty": EMPTY_MESSAGE,
                "too_large": too_large_message("{size}", spec),
                "format": not_accepted_message("{format}", spec),
                "not_image": not_image_message(spec),
                "svg": svg_message(spec),
                "too_many_pixels": too_many_pixels_message("{width}", "{height}", spec),
            },
        }
        for spec in specs
    }
    return {"operations": operations, "format_names": FORMAT_NAMES}


def _looks_like_svg(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith((b"<svg", b"<?xml")) and b"<svg" in text[:2048]


def check_image(file, spec: OperationSpec) -> CheckedImage:
    """Validate an uploaded file (any file-like object with .size) for the operation."""
    size = file.size
    if size == 0:
        raise _error(EMPTY_MESSAGE, "empty")
    if size > spec.max_bytes:
        raise _error(too_large_message(filesizeformat(size), spec), "too_large")
    file.seek(0)
    head = file.read(4096)
    if _looks_like_svg(head):
        raise _error(svg_message(spec), "svg")
    file.seek(0)
    with warnings.catch_warnings():
        # Pillow warns before it refuses; a warning about pixels is already a refusal here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(file)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _error(
                f"The photo declares far more pixels than {spec.label} accepts (up to "
                f"{spec.max_width} × {spec.max_height}). Scale it down and try again.",
                "too_many_pixels",
            ) from None
        except UnidentifiedImageError:
            raise _error(not_image_message(spec), "not_image") from None
        with image:
            width, height = image.size
            fmt = image.format
            if fmt not in spec.formats:
                raise _error(not_accepted_message(FORMAT_NAMES.get(fmt, fmt), spec), "format")
            if width > spec.max_width or height > spec.max_height:
                raise _error(too_many_pixels_message(width, height, spec), "too_many_pixels")
            try:
                image.load()  # decodes every pixel: finds truncated and corrupt files
            except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning):
                raise _error(
                    "The photo is damaged or incomplete (it could not be read to the end). "
                    "Open it on your computer, save it again and upload the new copy.",
                    "corrupt",
                ) from None
    file.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: file.read(1024 * 1024), b""):
        digest.update(chunk)
    file.seek(0)
    return CheckedImage(fmt, width, height, size, digest.hexdigest())
