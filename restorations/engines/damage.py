"""Measuring what is wrong with a photo, so each repair step runs only where it is needed.

Every measure is cheap (a fraction of a second on a 12-megapixel photo) and works on a BGR
uint8 array. None of them decides anything: the thresholds live with the repair steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Immerkær's noise-estimation kernel: it cancels smooth image structure and keeps noise.
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
_MEASURE_EDGE = 1024  # tone is measured on a copy no larger than this


@dataclass(frozen=True)
class Tone:
    """Dark and bright ends of the photo's tones, after scratches and grain are filtered out."""

    black: tuple[float, float, float]  # per-channel 0.5th percentile, BGR
    white: tuple[float, float, float]  # per-channel 99.5th percentile, BGR
    black_lightness: float  # the same ends of the grey (luma) image
    white_lightness: float


def noise_sigma(image: np.ndarray) -> float:
    """Standard deviation of additive pixel noise, the largest over the three channels.

    Immerkær's estimate (median-based), taken only where the photo is smooth (the half of the
    pixels with the lowest gradient), so texture and edges are not counted as noise.
    """
    sigmas = []
    for channel in cv2.split(image) if not is_grey(image) else [image[:, :, 0]]:
        values = channel.astype(np.float32)
        response = np.abs(cv2.filter2D(values, -1, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT))
        gradient = np.abs(cv2.Sobel(values, cv2.CV_32F, 1, 0)) + np.abs(
            cv2.Sobel(values, cv2.CV_32F, 0, 1)
        )
        smooth = gradient <= np.percentile(gradient, 50)
        # The kernel's squared weights sum to 36, so noise of std s yields std 6 s;
        # the median of |N(0, 1)| is 0.6745.
        sigmas.append(float(np.median(response[smooth])) / (6 * 0.6745) if smooth.any() else 0.0)
    return max(sigmas)


def blockiness(image: np.ndarray) -> float:
    """How much stronger steps are across JPEG's 8 x 8 block edges than inside blocks.

    In grey levels: about 0 for a photo never compressed hard, 2-5 for JPEG quality 20-30.
    """
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    if min(gray.shape) < 16:
        return 0.0
    steps = []
    for diff in (np.abs(np.diff(gray, axis=1)), np.abs(np.diff(gray, axis=0)).T):
        edges = diff[:, 7::8].mean()
        inside = np.delete(diff, np.s_[7::8], axis=1).mean()
        steps.append(edges - inside)
    return float(max(0.0, np.mean(steps)))


def tone(image: np.ndarray) -> Tone:
    """Tone ends of a shrunken, median-filtered copy: thin scratches, dust and grain drop out."""
    small = shrink(image, _MEASURE_EDGE)
    small = cv2.medianBlur(small, 7)
    channels = cv2.split(small)
    black = tuple(float(np.percentile(c, 0.5)) for c in channels)
    white = tuple(float(np.percentile(c, 99.5)) for c in channels)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
    return Tone(black, white, float(np.percentile(gray, 0.5)), float(np.percentile(gray, 99.5)))


def is_grey(image: np.ndarray) -> bool:
    """True when the three channels are equal (a grey photo stored as BGR)."""
    blue, green, red = image[:, :, 0], image[:, :, 1], image[:, :, 2]
    return bool(np.array_equal(blue, green) and np.array_equal(green, red))


def shrink(image: np.ndarray, max_edge: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = max_edge / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
