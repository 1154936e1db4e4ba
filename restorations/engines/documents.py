"""Document and product correction: find the page (or the print) and straighten it."""

from __future__ import annotations

import cv2
import numpy as np

from restorations.engines import damage

_DETECTION_EDGE = 1000
_MIN_SUBJECT_AREA = 0.2


def crop_to_subject(image: np.ndarray) -> np.ndarray:
    quad = find_page(image)
    if quad is not None:
        return _warp_to_rectangle(image, quad)
    return _trim_uniform_borders(image)


def find_page(image: np.ndarray) -> np.ndarray | None:
    """Corners of the largest convex 4-sided outline covering >= 20 % of the image, ordered
    top-left, top-right, bottom-right, bottom-left (float32, 4 x 2), or None.

    An outline hugging the whole frame is no subject (it is the photo's own edge) and is
    left to the border trimming instead.
    """
    small = damage.shrink(image, _DETECTION_EDGE)
    scale = image.shape[1] / small.shape[1]
    gray = cv2.GaussianBlur(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY), (5, 5), 0)
    # Closing bridges gaps in the edge outline without pushing it outwards like a dilation.
    edges = cv2.morphologyEx(cv2.Canny(gray, 50, 150), cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    _, bright = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    image_area = gray.shape[0] * gray.shape[1]
    for binary in (edges, bright):
        contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:5]:
            area = cv2.contourArea(contour)
            if area < _MIN_SUBJECT_AREA * image_area:
                break
            approx = cv2.approxPolyDP(contour, 0.02 * cv2.arcLength(contour, True), True)
            if len(approx) == 4 and cv2.isContourConvex(approx) and area < 0.95 * image_area:
                return _order_corners(approx.reshape(4, 2).astype(np.float32) * scale)
    return None


def _order_corners(quad: np.ndarray) -> np.ndarray:
    """Top-left, top-right, bottom-right, bottom-left (also for a quad turned 45 degrees)."""
    centre = quad.mean(axis=0)
    # With y pointing down, increasing angle runs clockwise on screen.
    clockwise = quad[np.argsort(np.arctan2(quad[:, 1] - centre[1], quad[:, 0] - centre[0]))]
    return np.roll(clockwise, -int(np.argmin(clockwise.sum(axis=1))), axis=0)


def _warp_to_rectangle(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    top_left, top_right, bottom_right, bottom_left = corners = quad
    width = round(
        max(np.linalg.norm(top_right - top_left), np.linalg.norm(bottom_right - bottom_left))
    )
    height = round(
        max(np.linalg.norm(bottom_left - top_left), np.linalg.norm(bottom_right - top_right))
    )
    target = np.array(
        [[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1]], np.float32
    )
    matrix = cv2.getPerspectiveTransform(corners, target)
    return cv2.warpPerspective(image, matrix, (width, height), flags=cv2.INTER_CUBIC)


def _trim_uniform_borders(image: np.ndarray, tolerance: int = 12) -> np.ndarray:
    """Crop away a frame of (nearly) one colour, e.g. scanner bed around a print."""
    gray = cv2.GaussianBlur(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), (5, 5), 0)
    frame_level = int(np.median(np.concatenate((gray[0], gray[-1], gray[:, 0], gray[:, -1]))))
    differs = cv2.absdiff(gray, np.full_like(gray, frame_level)) > tolerance
    content = cv2.morphologyEx(differs.astype(np.uint8), cv2.MORPH_OPEN, np.ones((5, 5), np.uint8))
    points = cv2.findNonZero(content)
    if points is None:
        return image
    x, y, width, height = cv2.boundingRect(points)
    if width * height < _MIN_SUBJECT_AREA * gray.size:
        return image
    return image[y : y + height, x : x + width].copy()


def flatten_background(image: np.ndarray) -> np.ndarray:
    """Divide out uneven lighting and paper tone so text sits on an even white page."""
    size = max(15, min(image.shape[:2]) // 30) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    # Closing removes dark strokes narrower than the kernel, leaving the page background.
    background = cv2.morphologyEx(image, cv2.MORPH_CLOSE, kernel)
    background = cv2.GaussianBlur(background, (0, 0), size / 2)
    # Areas darker than mid-grey are not paper; a floor keeps them from being blown to white.
    background = np.maximum(background, 128)
    return cv2.divide(image, background, scale=255)
