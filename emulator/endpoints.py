"""The endpoints the emulator serves: their own parameters and their input limits.

Written from picwish-protocol.md, not from the product's operation table, because the emulator
stands in for PicWish; tests/emulator/test_endpoints.py checks that the two agree.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass

from PIL import Image

MB = 1024 * 1024


@dataclass(frozen=True)
class Endpoint:
    max_bytes: int
    max_width: int
    max_height: int
    formats: frozenset[str] | None  # Pillow format names; None: whatever the engine decodes
    params: Mapping[str, tuple[str, ...]]  # accepted values of the endpoint's own parameters

    def takes_format(self, fmt: str) -> bool:
        return self.formats is None or fmt in self.formats

    def fits(self, width: int, height: int) -> bool:
        return width <= self.max_width and height <= self.max_height


# Parameters every endpoint takes, besides exactly one of image_file and image_url.
COMMON_PARAMS = {"sync": ("0", "1"), "return_type": ("1", "2")}

ENDPOINTS: dict[str, Endpoint] = {
    "restoration-old-photo": Endpoint(
        20 * MB - 1,  # "< 20 MB"
        2048,
        2048,
        frozenset({"JPEG", "PNG"}),
        {
            "restoration_type": ("0", "1", "2"),
            "model_type": ("1", "2", "3"),
            "change_color": ("0", "1"),
        },
    ),
    "scale": Endpoint(
        30 * MB, 4096, 4096, None, {"type": ("clean", "face"), "scale_factor": ("", "1", "2", "4")}
    ),
    "scale-pro": Endpoint(
        30 * MB, 4096, 4096, frozenset({"JPEG", "PNG", "BMP", "WEBP", "TIFF"}), {"type": ("0", "1")}
    ),
    "colorization": Endpoint(30 * MB, 4096, 4096, None, {"format": ("jpg", "png", "webp")}),
    "correction": Endpoint(30 * MB, 4096, 4096, None, {"type": ("0", "1", "2", "3", "4")}),
}


def peek_image(data: bytes) -> tuple[str, int, int] | None:
    """Format and size from the image header, or None when Pillow cannot identify it."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return str(image.format), image.width, image.height
    except Exception:  # Pillow reports unreadable headers with many exception types
        return None
