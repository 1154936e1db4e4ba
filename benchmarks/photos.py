"""Real photographs and the damage the engine benchmark and tests put on them.

The photographs come with scikit-image (`skimage.data`, nothing downloaded). Each is resized
to a 640 px long edge; grey ones stay grey (three equal BGR channels). The damage functions
are seeded so every run degrades the same pixels.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
from skimage import data

LONG_EDGE = 640
COLOUR_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")
GREY_PHOTOS = ("camera", "coins", "moon")
PHOTOS = COLOUR_PHOTOS + GREY_PHOTOS
SEPIA_CAST_BGR = (-20.0, 8.0, 22.0)


def photo(name: str, long_edge: int = LONG_EDGE) -> np.ndarray:
    """One skimage photograph as BGR uint8, its long edge resized to `long_edge`."""
    image = native(name)
    height, width = image.shape[:2]
    scale = long_edge / max(height, width)
    size = (round(width * scale), round(height * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interpolation)


def native(name: str) -> np.ndarray:
    """One skimage photograph as BGR uint8 at its own resolution."""
    image = getattr(data, name)()
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR if image.ndim == 2 else cv2.COLOR_RGB2BGR)


def crop(image: np.ndarray, size: int) -> np.ndarray:
    """The centred `size` x `size` square (or less, on a smaller side)."""
    height, width = image.shape[:2]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return np.ascontiguousarray(image[top : top + size, left : left + size])


def is_grey(image: np.ndarray) -> bool:
    return bool(
        (image[:, :, 0] == image[:, :, 1]).all() and (image[:, :, 1] == image[:, :, 2]).all()
    )


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0, 255).round().astype(np.uint8)


# --- damage -----------------------------------------------------------------------------


def add_noise(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    """Gaussian sensor noise; grey photos get grey noise, like a monochrome sensor or film."""
    rng = np.random.default_rng(seed)
    shape = image.shape[:2] + ((1,) if is_grey(image) else (3,))
    noise = rng.normal(0, sigma, shape).astype(np.float32)
    return to_uint8(image.astype(np.float32) + noise)


def add_scratches(image: np.ndarray, seed: int = 0, lines: int = 6, specks: int = 40) -> np.ndarray:
    """Thin bright and dark scratches (1-2 px) and dust specks (radius 1-2 px)."""
    rng = np.random.default_rng(seed + 100)
    damaged = image.copy()
    height, width = image.shape[:2]
    for i in range(lines + specks):
        value = float(rng.integers(225, 250) if i % 2 == 0 else rng.integers(10, 35))
        start = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if i < lines:
            end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(damaged, start, end, (value,) * 3, int(rng.integers(1, 3)), cv2.LINE_AA)
        else:
            cv2.circle(damaged, start, int(rng.integers(1, 3)), (value,) * 3, -1, cv2.LINE_AA)
    return damaged


def fade(image: np.ndarray, contrast: float = 0.6, cast=SEPIA_CAST_BGR) -> np.ndarray:
    """Contrast squeezed toward mid-grey, then a colour cast (sepia-like by default)."""
    faded = 128 + (image.astype(np.float32) - 128) * contrast
    return to_uint8(faded + np.array(cast, dtype=np.float32))


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buffer, cv2.IMREAD_COLOR)


def all_together(image: np.ndarray, seed: int = 0) -> np.ndarray:
    """A faded, scratched, grainy print, scanned and saved as a small JPEG."""
    return jpeg(add_noise(add_scratches(fade(image), seed), 12, seed), 30)


DAMAGES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "noise 10": lambda image: add_noise(image, 10),
    "noise 25": lambda image: add_noise(image, 25),
    "scratches+dust": add_scratches,
    "fade+cast": fade,
    "jpeg q20": lambda image: jpeg(image, 20),
    "all together": all_together,
}


def downscale(image: np.ndarray, factor: int = 2) -> np.ndarray:
    height, width = image.shape[:2]
    return cv2.resize(image, (width // factor, height // factor), interpolation=cv2.INTER_AREA)


# --- a photographed document ------------------------------------------------------------


def photographed_document(background: str = "coffee", turn: float = 12.0, seed: int = 0):
    """skimage's scanned page as if photographed lying on a real photo, and its four corners.

    The page is turned by `turn` degrees and seen at an angle (its far side 10 % shorter). The
    scan's strong uneven lighting is halved, so the paper is brighter than most backgrounds but
    still darker toward one side; the page casts a soft shadow on the background, and the light
    falls off across the whole scene. Returns (image, corners) with corners ordered top-left,
    top-right, bottom-right, bottom-left in image pixels.
    """
    rng = np.random.default_rng(seed)
    page = cv2.resize(data.page(), (384 * 2, 191 * 2), interpolation=cv2.INTER_CUBIC)
    paper = cv2.GaussianBlur(cv2.morphologyEx(page, cv2.MORPH_CLOSE, np.ones((25, 25))), (0, 0), 9)
    lit = page.astype(np.float32) * (np.sqrt(235.0 / np.maximum(paper, 1.0)))
    page = cv2.cvtColor(to_uint8(lit), cv2.COLOR_GRAY2BGR)
    page_height, page_width = page.shape[:2]
    scene = photo(background, 900).astype(np.float32)
    height, width = scene.shape[:2]
    centre = (width / 2 + rng.uniform(-30, 30), height / 2 + rng.uniform(-30, 30))
    box = cv2.boxPoints((centre, (page_width * 0.8, page_height * 0.8), turn)).astype(np.float32)
    # Perspective: the far side (boxPoints' first two corners) is drawn together by 5 % at each
    # end, as with a camera held at an angle above the page.
    box[[0, 1]] += (box[[2, 3]] - box[[0, 1]]) * 0.0 + (box[[1, 0]] - box[[0, 1]]) * 0.05
    source = np.array(
        [[0, page_height - 1], [0, 0], [page_width - 1, 0], [page_width - 1, page_height - 1]],
        np.float32,
    )
    matrix = cv2.getPerspectiveTransform(source, box)
    on_page = cv2.warpPerspective(
        np.full(page.shape[:2], 1, np.float32), matrix, (width, height), flags=cv2.INTER_LINEAR
    )[:, :, None]
    shadow = cv2.GaussianBlur(np.roll(on_page[:, :, 0], (10, 14), axis=(0, 1)), (0, 0), 8)
    scene *= 1 - 0.45 * shadow[:, :, None]
    warped = cv2.warpPerspective(page, matrix, (width, height), flags=cv2.INTER_CUBIC)
    scene = scene * (1 - on_page) + warped.astype(np.float32) * on_page
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * x / width + np.sin(angle) * y / height) / 2 + 0.5
    scene *= (1 - 0.25 * ramp)[:, :, None]
    corners = cv2.perspectiveTransform(
        np.array(
            [
                [
                    [0, 0],
                    [page_width - 1, 0],
                    [page_width - 1, page_height - 1],
                    [0, page_height - 1],
                ]
            ],
            np.float32,
        ),
        matrix,
    )[0]
    return to_uint8(scene), corners
