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


def _looks_like_svg(head: bytes) -> bool:
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return text.startswith((b"<svg", b"<?xml")) and b"<svg" in text[:2048]


def check_image(file, spec: OperationSpec) -> CheckedImage:
    """Validate an uploaded file (any file-like object with .size) for the operation."""
    size = file.size
    allowed = ", ".join(sorted(FORMAT_NAMES[f] for f in spec.formats))
    if size == 0:
        raise _error("The file is empty. Choose a photo file.", "empty")
    if size > spec.max_bytes:
        raise _error(
            f"The file is {filesizeformat(size)}; {spec.label} accepts up to "
            f"{filesizeformat(spec.max_bytes)}. Save it smaller or as JPG and try again.",
            "too_large",
        )
    file.seek(0)
    head = file.read(4096)
    if _looks_like_svg(head):
        raise _error(f"SVG drawings are not supported. Upload a photo as {allowed}.", "svg")
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
            raise _error(
                f"This file is not a photo we can read. Upload a photo as {allowed}.",
                "not_image",
            ) from None
        with image:
            width, height = image.size
            fmt = image.format
            if fmt not in spec.formats:
                raise _error(
                    f"{FORMAT_NAMES.get(fmt, fmt)} files are not accepted by {spec.label}. "
                    f"Upload a photo as {allowed}.",
                    "format",
                )
            if width > spec.max_width or height > spec.max_height:
                raise _error(
                    f"The photo is {width} × {height} pixels; {spec.label} accepts up to "
                    f"{spec.max_width} × {spec.max_height}. Scale it down and try again.",
                    "too_many_pixels",
                )
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
