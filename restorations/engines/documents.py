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
    """Corners of the page (or print) in a photo, ordered top-left, top-right, bottom-right,
    bottom-left (float32, 4 x 2, image pixels), or None.

    Candidate regions are what is brighter and greyer than its surroundings (paper), what is
    brighter, what strong edges close, and what differs from the colour at the frame's edge.
    Each, text holes filled, is tried as a four-sided outline covering 20-95 % of the image
    that the region fills; of those, the one whose weakest side stands out most from its
    surroundings wins. Its corners are where lines fitted to its four sides meet, which is more
    exact than the outline's own vertices. An outline hugging the whole frame is no subject (it
    is the photo's own edge) and is left to the border trimming instead.
    """
    small = damage.shrink(image, _DETECTION_EDGE)
    scale = image.shape[1] / small.shape[1]
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB).astype(np.float32)
    best, best_contrast = None, 0.0
    for region in _page_regions(small):
        found = _quad_of(region)
        if found is None or found[1] < _MIN_FIT:
            continue
        # A bright part of a page fills its own quad too, but some of its sides then run
        # through the page: the quad whose weakest side stands out most is the page.
        contrast = _weakest_side(lab, found[0])
        if contrast > best_contrast:
            best, best_contrast = found[0], contrast
    return None if best is None else _order_corners(best * scale)


def _weakest_side(lab: np.ndarray, quad: np.ndarray, offset: float = 4.0) -> float:
    """The smallest, over the quad's sides, of the median colour difference (LAB) between
    points just inside and just outside the side."""
    height, width = lab.shape[:2]
    centre = quad.mean(axis=0)
    weakest = np.inf
    for i in range(4):
        start, end = quad[i], quad[(i + 1) % 4]
        t = np.linspace(0.1, 0.9, 40)[:, None]
        points = start + (end - start) * t
        direction = (end - start) / max(float(np.linalg.norm(end - start)), 1.0)
        normal = np.array([-direction[1], direction[0]], np.float32)
        if np.dot(centre - start, normal) < 0:
            normal = -normal  # pointing into the quad
        inside = (points + offset * normal).round().astype(int)
        outside = (points - offset * normal).round().astype(int)
        for p in (inside, outside):
            p[:, 0] = p[:, 0].clip(0, width - 1)
            p[:, 1] = p[:, 1].clip(0, height - 1)
        difference = lab[inside[:, 1], inside[:, 0]] - lab[outside[:, 1], outside[:, 0]]
        weakest = min(weakest, float(np.median(np.linalg.norm(difference, axis=1))))
    return weakest


_MIN_FIT = 0.9  # the region must fill this much of its quad
_MIN_SHARE = 0.7
_FRAME_TOLERANCE = 12.0  # and this much of the region must lie inside the quad


def _page_regions(small: np.ndarray):
    """Binary masks of candidate page regions, most specific first."""
    lab = cv2.cvtColor(cv2.GaussianBlur(small, (5, 5), 0), cv2.COLOR_BGR2LAB).astype(np.float32)
    chroma = np.hypot(lab[:, :, 1] - 128, lab[:, :, 2] - 128)
    paper = np.clip(lab[:, :, 0] - 3 * chroma, 0, 255).astype(np.uint8)
    gray = lab[:, :, 0].astype(np.uint8)
    for score in (paper, gray):
        _, bright = cv2.threshold(score, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        yield bright
    edges = cv2.Canny(gray, 50, 150)
    yield cv2.morphologyEx(edges, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    # Whatever differs from the colour around the frame's edge (a print on a scanner bed).
    rim = np.concatenate((lab[0], lab[-1], lab[:, 0], lab[:, -1]))
    distance = np.linalg.norm(lab - np.median(rim, axis=0), axis=2)
    yield (distance > _FRAME_TOLERANCE).astype(np.uint8) * 255


def _quad_of(binary: np.ndarray) -> tuple[np.ndarray, float] | None:
    """The largest region of `binary` as a quad (corners, fit), if it is four-sided."""
    size = max(5, min(binary.shape) // 60) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    # Filling swallows the text (and makes a closed edge outline solid); opening then cuts the
    # region loose from bright background it touches at thin necks.
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    binary = cv2.drawContours(np.zeros_like(binary), contours, -1, 255, -1)
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    if not contours:
        return None
    contour = max(contours, key=cv2.contourArea)
    image_area = binary.shape[0] * binary.shape[1]
    area = cv2.contourArea(contour)
    if not _MIN_SUBJECT_AREA * image_area <= area < 0.95 * image_area:
        return None
    hull = cv2.convexHull(contour)
    approx = None
    for epsilon in (0.02, 0.03, 0.05, 0.08):
        approx = cv2.approxPolyDP(hull, epsilon * cv2.arcLength(hull, True), True)
        if len(approx) <= 4:
            break
    if approx is None or len(approx) != 4 or not cv2.isContourConvex(approx):
        return None
    quad = _refine(approx.reshape(4, 2).astype(np.float32), contour.reshape(-1, 2))
    filled = np.zeros(binary.shape, np.uint8)
    cv2.drawContours(filled, [contour], -1, 1, -1)
    polygon = np.zeros(binary.shape, np.uint8)
    cv2.fillConvexPoly(polygon, quad.round().astype(np.int32), 1)
    # The page fills its quad; the region may reach past it where the page touches something
    # as bright (a white cup), but most of the region must be the quad.
    shared = np.count_nonzero(filled & polygon)
    if shared < _MIN_SHARE * np.count_nonzero(filled):
        return None
    return quad, shared / max(np.count_nonzero(polygon), 1)


def _refine(quad: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Fit a line to the outline points along each side, away from the corners (which
    rounding and shadows bend), and intersect neighbouring lines."""
    points = points.astype(np.float32)
    lines = []
    for i in range(4):
        start, end = quad[i], quad[(i + 1) % 4]
        direction = end - start
        length = float(np.linalg.norm(direction))
        if length < 1:
            return quad
        direction /= length
        normal = np.array([-direction[1], direction[0]], np.float32)
        along = (points - start) @ direction
        across = np.abs((points - start) @ normal)
        near = (across <= max(3.0, 0.02 * length)) & (along > 0.1 * length)
        near &= along < 0.9 * length
        if np.count_nonzero(near) < 10:
            return quad
        vx, vy, x0, y0 = cv2.fitLine(points[near], cv2.DIST_HUBER, 0, 0.01, 0.01).ravel()
        lines.append((np.array([x0, y0]), np.array([vx, vy])))
    corners = []
    for i in range(4):
        (p1, d1), (p2, d2) = lines[i - 1], lines[i]
        matrix = np.array([d1, -d2]).T
        if abs(np.linalg.det(matrix)) < 1e-6:
            return quad
        t = np.linalg.solve(matrix, p2 - p1)
        corners.append(p1 + t[0] * d1)
    refined = np.array(corners, np.float32)
    # A refinement that moved a corner far is a bad fit: keep the outline's own corners.
    if np.abs(refined - quad).max() > 0.05 * max(np.ptp(quad[:, 0]), np.ptp(quad[:, 1])):
        return quad
    return refined


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
