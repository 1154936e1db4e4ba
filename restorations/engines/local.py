"""Built-in restoration engine: classical OpenCV/NumPy processing, no model weights.

It is the default engine when no PicWish key is configured, so every operation the
dashboard offers works offline. Option names and values mirror the PicWish endpoints.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps

from restorations.engines.formats import EXTENSIONS

# Each worker process runs one image at a time and the worker runs a process per core, so
# OpenCV's own thread pool would only oversubscribe the cores and stall the other processes.
cv2.setNumThreads(1)

Progress = Callable[[int], None]

JPEG_QUALITY = 92
WEBP_QUALITY = 90
OLD_PHOTO_MAX_EDGE = 4096
SCALE_MAX_EDGE = 8192
SCALE_PRO_MAX_EDGE = 4096
AUTO_SCALE_MAX_EDGE = 2048

_FORMAT_ALIASES = {"JPG": "JPEG", "JPEG": "JPEG", "PNG": "PNG", "WEBP": "WEBP"}
# Upload formats PicWish accepts; limiting Pillow to these keeps rarely used decoders away
# from untrusted files. (Multi-picture camera JPEGs are opened by the JPEG plugin.)
_DECODABLE_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF")
# Immerkær's noise-estimation kernel: it cancels smooth image structure and keeps noise.
_NOISE_KERNEL = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], dtype=np.float32)
_NLM_FULL_SEARCH_MAX_PIXELS = 4_500_000


class CorruptImage(Exception):
    """The bytes are not an image we can decode."""


@dataclass(frozen=True)
class LocalResult:
    data: bytes  # the encoded result file
    format: str  # Pillow-style name: "JPEG", "PNG" or "WEBP"
    extension: str  # ".jpg", ".png" or ".webp"
    width: int
    height: int


@dataclass(frozen=True)
class _DamageLevel:
    denoise: float  # multiplier on the estimated noise level
    scratch_contrast: int  # minimum top-hat response (grey levels) of a scratch or speck
    scratch_length: float  # minimum scratch length, in structuring-element sizes
    speck_area: float  # largest dust speck, as a fraction of the structuring element's area
    clahe_clip: float


_DAMAGE_LEVELS = {
    "0": _DamageLevel(
        denoise=0.8, scratch_contrast=45, scratch_length=3.0, speck_area=0.25, clahe_clip=1.2
    ),
    "1": _DamageLevel(
        denoise=1.0, scratch_contrast=30, scratch_length=2.0, speck_area=0.6, clahe_clip=1.5
    ),
    "2": _DamageLevel(
        denoise=1.3, scratch_contrast=20, scratch_length=1.5, speck_area=1.0, clahe_clip=2.0
    ),
}
# model_type -> (unsharp amount, unsharp sigma, upscale factor)
_OLD_PHOTO_MODELS = {"1": (0.35, 1.0, 1), "2": (0.7, 1.2, 1), "3": (0.5, 1.5, 2)}


class _ProgressReporter:
    """Forwards only strictly increasing percentages in 0..100 to the callback."""

    def __init__(self, callback: Progress | None) -> None:
        self._callback = callback
        self._last = -1

    def __call__(self, percent: int) -> None:
        percent = max(0, min(100, int(percent)))
        if self._callback is not None and percent > self._last:
            self._last = percent
            self._callback(percent)


# --- public API -------------------------------------------------------------------------


def decode(data: bytes) -> np.ndarray:
    """Decode image bytes to a BGR uint8 array, applying the EXIF orientation."""
    if not data:
        raise CorruptImage("The file is empty.")
    try:
        with Image.open(io.BytesIO(data), formats=_DECODABLE_FORMATS) as opened:
            opened.load()
            return _pillow_to_bgr(ImageOps.exif_transpose(opened))
    except Image.DecompressionBombError as exc:
        raise CorruptImage("The image has too many pixels to process safely.") from exc
    # Pillow signals malformed input with many exception types (OSError, SyntaxError,
    # struct.error, ...); all of them mean "cannot decode".
    except Exception as exc:
        raise CorruptImage(
            "The file is damaged or not a supported image (JPEG, PNG, WEBP, BMP, TIFF, GIF)."
        ) from exc


def encode(image: np.ndarray, fmt: str) -> bytes:
    """Encode a BGR image as JPEG (quality 92), PNG or WEBP."""
    name = _format_name(fmt)
    params = {
        "JPEG": [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY],
        "PNG": [],
        "WEBP": [cv2.IMWRITE_WEBP_QUALITY, WEBP_QUALITY],
    }[name]
    ok, buffer = cv2.imencode(EXTENSIONS[name], _as_bgr(image), params)
    if not ok:
        raise ValueError(f"OpenCV could not encode the image as {name}.")
    return buffer.tobytes()


def restore(
    image: np.ndarray,
    operation: str,
    options: dict[str, str],
    progress: Progress | None = None,
) -> np.ndarray:
    """Apply one PicWish-style operation to a BGR image and return the new image.

    `progress` receives a few increasing percentages as stages finish, ending with 100.
    """
    handler = OPERATIONS.get(operation)
    if handler is None:
        raise ValueError(f"Unknown operation: {operation!r}")
    report = _ProgressReporter(progress)
    result = handler(_as_bgr(image), options, report)
    report(100)
    return result


def run(
    data: bytes,
    operation: str,
    options: dict[str, str],
    progress: Progress | None = None,
    source_format: str = "JPEG",
) -> LocalResult:
    """Decode, restore and encode one uploaded file."""
    if operation not in OPERATIONS:
        raise ValueError(f"Unknown operation: {operation!r}")
    fmt = _result_format(operation, options, source_format)
    report = _ProgressReporter(progress)
    image = decode(data)
    report(5)
    restored = restore(image, operation, options, lambda percent: report(10 + percent * 8 // 10))
    encoded = encode(restored, fmt)
    report(100)
    height, width = restored.shape[:2]
    return LocalResult(encoded, fmt, EXTENSIONS[fmt], width, height)


# --- operations -------------------------------------------------------------------------


def _restore_old_photo(
    image: np.ndarray, options: Mapping[str, str], report: _ProgressReporter
) -> np.ndarray:
    damage_key = _option(options, "restoration_type", ("0", "1", "2"), "0")
    damage = _DAMAGE_LEVELS[damage_key]
    model = _option(options, "model_type", ("1", "2", "3"), "1")
    if damage_key == "0":
        model = "1"  # as on PicWish, the model choice only applies to medium/severe damage
    colourise = _option(options, "change_color", ("0", "1"), "1") == "1" and _is_monochrome(image)
    report(5)
    image = _denoise(image, damage.denoise)
    report(35)
    image = _remove_scratches(image, damage)
    report(60)
    image = _equalize_lightness(_auto_levels(image), damage.clahe_clip)
    if colourise:
        image = _colourise(image)
    report(75)
    amount, sigma, factor = _OLD_PHOTO_MODELS[model]
    upscaled = _upscale(image, factor, OLD_PHOTO_MAX_EDGE)
    report(85)
    return _sharpen(upscaled, amount, sigma * _enlargement(image, upscaled))


def _scale(image: np.ndarray, options: Mapping[str, str], report: _ProgressReporter) -> np.ndarray:
    kind = _option(options, "type", ("clean", "face"), "clean")
    factor_option = _option(options, "scale_factor", ("", "1", "2", "4"), "")
    if factor_option:
        factor = int(factor_option)
    else:
        factor = 2 if max(image.shape[:2]) <= AUTO_SCALE_MAX_EDGE else 1
    image = _denoise(image, 0.6)
    if kind == "face":
        # Edge-preserving smoothing keeps skin soft; the sharpening below is gentler too.
        image = cv2.bilateralFilter(image, 5, 20, 5)
    report(40)
    upscaled = _upscale(image, factor, SCALE_MAX_EDGE)
    report(75)
    amount = 0.35 if kind == "face" else 0.6
    return _sharpen(upscaled, amount, 0.8 * _enlargement(image, upscaled))


def _scale_pro(
    image: np.ndarray, options: Mapping[str, str], report: _ProgressReporter
) -> np.ndarray:
    factor = 4 if _option(options, "type", ("0", "1"), "0") == "0" else 2
    image = _denoise(image, 0.6)
    report(30)
    image = _enhance_detail(image)
    report(55)
    upscaled = _upscale(image, factor, SCALE_PRO_MAX_EDGE)
    report(80)
    return _sharpen(upscaled, 0.5, 0.8 * _enlargement(image, upscaled))


def _colorize(
    image: np.ndarray, options: Mapping[str, str], report: _ProgressReporter
) -> np.ndarray:
    report(20)
    return _colourise(image)


def _correct(
    image: np.ndarray, options: Mapping[str, str], report: _ProgressReporter
) -> np.ndarray:
    # PicWish types: 0 crop (document), 1 text enhancement only, 2 both,
    # 3 crop (product), 4 crop + background removal (product; cropped only here).
    kind = _option(options, "type", ("0", "1", "2", "3", "4"), "1")
    if kind != "1":
        image = _crop_to_subject(image)
    report(50)
    if kind in ("1", "2"):
        image = _flatten_background(image)
    report(75)
    return _equalize_lightness(_auto_levels(image), 1.5)


OPERATIONS: dict[str, Callable[[np.ndarray, Mapping[str, str], _ProgressReporter], np.ndarray]] = {
    "restoration-old-photo": _restore_old_photo,
    "scale": _scale,
    "scale-pro": _scale_pro,
    "colorization": _colorize,
    "correction": _correct,
}


# --- helpers: options and formats -------------------------------------------------------


def _option(options: Mapping[str, str], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = options.get(key) or default
    if value not in allowed:
        raise ValueError(f"Invalid {key}: {value!r} (expected one of {', '.join(allowed)})")
    return value


def _format_name(fmt: str) -> str:
    name = _FORMAT_ALIASES.get(fmt.upper())
    if name is None:
        raise ValueError(f"Unsupported output format: {fmt!r}")
    return name


def _result_format(operation: str, options: Mapping[str, str], source_format: str) -> str:
    if operation == "colorization":
        return _format_name(options.get("format") or "jpg")
    return "PNG" if source_format.upper() == "PNG" else "JPEG"


def _pillow_to_bgr(image: Image.Image) -> np.ndarray:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit grayscale scans: convert("RGB") would clip them to white, so rescale.
        values = np.asarray(image, dtype=np.float32)
        top = 65535.0 if values.max() > 255 else 255.0
        gray = np.clip(values * (255 / top), 0, 255).round().astype(np.uint8)
        return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(np.asarray(image.convert("RGB")), cv2.COLOR_RGB2BGR)


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8:
        raise ValueError(f"Expected a uint8 image, got {image.dtype}.")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return np.ascontiguousarray(image[:, :, :3])
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"Expected a BGR image, got shape {image.shape}.")


# --- helpers: image processing ----------------------------------------------------------


def _noise_sigma(image: np.ndarray) -> float:
    """Estimate the standard deviation of additive noise (Immerkær, median-based)."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float32)
    response = cv2.filter2D(gray, -1, _NOISE_KERNEL, borderType=cv2.BORDER_REFLECT)
    # The kernel's squared weights sum to 36, so pure noise of std s yields std 6 s;
    # the median of |N(0, 1)| is 0.6745.
    return float(np.median(np.abs(response))) / (6 * 0.6745)


def _denoise(image: np.ndarray, strength: float) -> np.ndarray:
    sigma = _noise_sigma(image)
    if sigma * strength < 1.5:
        return image
    h = float(np.clip(sigma * strength, 2.0, 30.0))
    search = 21 if image.shape[0] * image.shape[1] <= _NLM_FULL_SEARCH_MAX_PIXELS else 11
    return cv2.fastNlMeansDenoisingColored(image, None, h, h, 7, search)


def _structuring_size(image: np.ndarray) -> int:
    """Odd size just wider than the widest scratch we expect at this resolution."""
    size = max(7, min(image.shape[:2]) // 100)
    return size | 1


def _scratch_mask(image: np.ndarray, damage: _DamageLevel) -> np.ndarray:
    """Mask thin bright/dark lines and small specks that stand out from their surroundings."""
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    size = _structuring_size(image)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    mask = np.zeros_like(gray)
    # Top-hat keeps bright structures narrower than the kernel, black-hat dark ones.
    for op in (cv2.MORPH_TOPHAT, cv2.MORPH_BLACKHAT):
        response = cv2.morphologyEx(gray, op, kernel)
        mask |= _scratch_components(response, damage, size)
    return cv2.dilate(mask, np.ones((3, 3), np.uint8))


def _scratch_components(response: np.ndarray, damage: _DamageLevel, size: int) -> np.ndarray:
    """Hysteresis threshold, then keep long thin components (scratches) and tiny ones (dust)."""
    weak = (response >= damage.scratch_contrast // 2).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(weak, connectivity=8)
    strong = np.zeros(count, dtype=bool)
    strong[np.unique(labels[response >= damage.scratch_contrast])] = True
    areas = stats[:, cv2.CC_STAT_AREA].astype(np.float32)
    lengths = np.hypot(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    # length^2 >= 4 * area means the component is at least four times longer than wide.
    scratch = (lengths >= damage.scratch_length * size) & (lengths**2 >= 4 * areas)
    speck = areas <= damage.speck_area * size * size
    keep = strong & (scratch | speck)
    keep[0] = False  # background label
    return keep[labels].astype(np.uint8)


def _remove_scratches(image: np.ndarray, damage: _DamageLevel) -> np.ndarray:
    mask = _scratch_mask(image, damage)
    if not mask.any():
        return image
    return cv2.inpaint(image, mask, 3, cv2.INPAINT_TELEA)


def _auto_levels(image: np.ndarray, clip: float = 0.5, max_gain: float = 3.0) -> np.ndarray:
    """Per-channel percentile stretch: undoes fading and neutralises colour casts."""
    channels = []
    for channel in cv2.split(image):
        cdf = np.cumsum(np.bincount(channel.ravel(), minlength=256)) / channel.size
        low = float(np.searchsorted(cdf, clip / 100))
        high = float(np.searchsorted(cdf, 1 - clip / 100))
        # Never stretch a narrow range more than max_gain: flat images would turn to noise.
        span = max(high - low, 255 / max_gain)
        centre = (low + high) / 2
        low, high = centre - span / 2, centre + span / 2
        lut = np.clip((np.arange(256) - low) * 255 / (high - low), 0, 255)
        channels.append(cv2.LUT(channel, lut.round().astype(np.uint8)))
    return cv2.merge(channels)


def _equalize_lightness(image: np.ndarray, clip_limit: float) -> np.ndarray:
    """CLAHE on the L channel only, so local contrast improves without shifting hues."""
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)
    lightness, a, b = cv2.split(lab)
    lightness = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(8, 8)).apply(lightness)
    return cv2.cvtColor(cv2.merge((lightness, a, b)), cv2.COLOR_LAB2BGR)


def _sharpen(image: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    # Written into `blurred` so a very large upscaled image is not copied a third time.
    return cv2.addWeighted(image, 1 + amount, blurred, -amount, 0, dst=blurred)


def _upscale(image: np.ndarray, factor: float, max_edge: int) -> np.ndarray:
    """Enlarge by `factor`, but never past `max_edge` on the long side and never shrink."""
    height, width = image.shape[:2]
    scale = min(float(factor), max_edge / max(height, width))
    if scale <= 1:
        return image
    size = (min(max_edge, round(width * scale)), min(max_edge, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_LANCZOS4)


def _enlargement(original: np.ndarray, upscaled: np.ndarray) -> float:
    """The scale actually applied, so sharpening radius follows the detail's new size."""
    return upscaled.shape[1] / original.shape[1]


def _enhance_detail(image: np.ndarray) -> np.ndarray:
    # detailEnhance on its own looks over-processed; a quarter of it reads as crisper.
    enhanced = cv2.detailEnhance(image, sigma_s=10, sigma_r=0.15)
    return cv2.addWeighted(image, 0.75, enhanced, 0.25, 0)


# --- helpers: colour --------------------------------------------------------------------


def _is_monochrome(image: np.ndarray) -> bool:
    """True for grayscale and single-tint (sepia, cyanotype) photos.

    In such photos the colour is (almost) a function of lightness alone, so predicting each
    pixel's chroma from the mean chroma of its lightness band leaves only a small residual.
    """
    # Blurring first stops colour noise from grain or scanning looking like real colour.
    small = cv2.GaussianBlur(_shrink(image, 256), (0, 0), 1.5)
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float32)
    bands = lab[:, 0].astype(np.int32) // 8
    counts = np.maximum(np.bincount(bands, minlength=32), 1)
    residual = np.zeros(len(lab), dtype=np.float32)
    for channel in (1, 2):
        band_means = np.bincount(bands, weights=lab[:, channel], minlength=32) / counts
        residual += (lab[:, channel] - band_means[bands]) ** 2
    return float(np.percentile(np.sqrt(residual), 99)) < 8.0


def _shrink(image: np.ndarray, max_edge: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = max_edge / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


# Lightness -> (a, b) offsets in OpenCV's 8-bit LAB (128 = neutral): cool shadows, warm
# skin-like mid-tones, warm-neutral highlights, and untouched pure black and white.
_TINT_LIGHTNESS = [0, 40, 90, 150, 205, 245, 255]
_TINT_A = [0, -2, 3, 10, 6, 2, 0]
_TINT_B = [0, -10, 4, 20, 14, 5, 0]


def _colourise(image: np.ndarray) -> np.ndarray:
    """Tint a monochrome image from its lightness. An approximation, not learned colour."""
    lightness = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)[:, :, 0]
    # Chroma follows a blurred lightness so fine texture and noise do not become colour noise.
    sigma = max(1.0, max(image.shape[:2]) / 500)
    guide = cv2.GaussianBlur(lightness, (0, 0), sigma)
    levels = np.arange(256)
    a_lut = (128 + np.interp(levels, _TINT_LIGHTNESS, _TINT_A)).round().astype(np.uint8)
    b_lut = (128 + np.interp(levels, _TINT_LIGHTNESS, _TINT_B)).round().astype(np.uint8)
    lab = cv2.merge((lightness, cv2.LUT(guide, a_lut), cv2.LUT(guide, b_lut)))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)


# --- helpers: document correction -------------------------------------------------------

_DETECTION_EDGE = 1000
_MIN_SUBJECT_AREA = 0.2


def _crop_to_subject(image: np.ndarray) -> np.ndarray:
    quad = _find_quadrilateral(image)
    if quad is not None:
        return _warp_to_rectangle(image, quad)
    return _trim_uniform_borders(image)


def _find_quadrilateral(image: np.ndarray) -> np.ndarray | None:
    """Corners of the largest convex 4-sided outline covering >= 20 % of the image.

    An outline hugging the whole frame is no subject (it is the photo's own edge) and is
    left to the border trimming instead.
    """
    small = _shrink(image, _DETECTION_EDGE)
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
                return approx.reshape(4, 2).astype(np.float32) * scale
    return None


def _order_corners(quad: np.ndarray) -> np.ndarray:
    """Top-left, top-right, bottom-right, bottom-left (also for a quad turned 45 degrees)."""
    centre = quad.mean(axis=0)
    # With y pointing down, increasing angle runs clockwise on screen.
    clockwise = quad[np.argsort(np.arctan2(quad[:, 1] - centre[1], quad[:, 0] - centre[0]))]
    return np.roll(clockwise, -int(np.argmin(clockwise.sum(axis=1))), axis=0)


def _warp_to_rectangle(image: np.ndarray, quad: np.ndarray) -> np.ndarray:
    top_left, top_right, bottom_right, bottom_left = corners = _order_corners(quad)
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


def _flatten_background(image: np.ndarray) -> np.ndarray:
    """Divide out uneven lighting and paper tone so text sits on an even white page."""
    size = max(15, min(image.shape[:2]) // 30) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    # Closing removes dark strokes narrower than the kernel, leaving the page background.
    background = cv2.morphologyEx(image, cv2.MORPH_CLOSE, kernel)
    background = cv2.GaussianBlur(background, (0, 0), size / 2)
    # Areas darker than mid-grey are not paper; a floor keeps them from being blown to white.
    background = np.maximum(background, 128)
    return cv2.divide(image, background, scale=255)
