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

from restorations.engines import classical, damage, documents, learned
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


class CorruptImage(Exception):
    """The bytes are not an image we can decode."""


@dataclass(frozen=True)
class LocalResult:
    data: bytes  # the encoded result file
    format: str  # Pillow-style name: "JPEG", "PNG" or "WEBP"
    extension: str  # ".jpg", ".png" or ".webp"
    width: int
    height: int
    path: str = "classical"  # what made it: "classical", or the learned model's name


@dataclass(frozen=True)
class _DamageLevel:
    denoise: float  # multiplier on the estimated noise level
    scratch_contrast: float  # minimum top-hat response (grey levels) of a scratch or speck


_DAMAGE_LEVELS = {
    "0": _DamageLevel(denoise=0.8, scratch_contrast=80),
    "1": _DamageLevel(denoise=1.0, scratch_contrast=60),
    "2": _DamageLevel(denoise=1.2, scratch_contrast=45),
}
# model_type -> (unsharp amount, upscale factor): 1 natural, 2 crisper, 3 enlarged 2x.
_OLD_PHOTO_MODELS = {"1": (0.0, 1), "2": (0.3, 1), "3": (0.0, 2)}


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
    return _restore(image, operation, options, _ProgressReporter(progress))[0]


def _restore(
    image: np.ndarray, operation: str, options: Mapping[str, str], report: _ProgressReporter
) -> _Outcome:
    handler = OPERATIONS.get(operation)
    if handler is None:
        raise ValueError(f"Unknown operation: {operation!r}")
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
    restored, path = _restore(
        image, operation, options, _ProgressReporter(lambda percent: report(10 + percent * 8 // 10))
    )
    encoded = encode(restored, fmt)
    report(100)
    height, width = restored.shape[:2]
    return LocalResult(encoded, fmt, EXTENSIONS[fmt], width, height, path)


# --- operations -------------------------------------------------------------------------
# Each operation returns the new image and the path that made it: "classical", or the name
# of the learned model used when the optional one is installed ("waifu2x").

_Outcome = tuple[np.ndarray, str]


def _restore_old_photo(
    image: np.ndarray, options: Mapping[str, str], report: _ProgressReporter
) -> _Outcome:
    damage_key = _option(options, "restoration_type", ("0", "1", "2"), "0")
    level = _DAMAGE_LEVELS[damage_key]
    model = _option(options, "model_type", ("1", "2", "3"), "1")
    if damage_key == "0":
        model = "1"  # as on PicWish, the model choice only applies to medium/severe damage
    colourise = _option(options, "change_color", ("0", "1"), "1") == "1" and _is_monochrome(image)
    # Fading first: the grain and JPEG blocks it squeezed are measured at their real contrast.
    image = classical.correct_fading(image)
    report(10)
    # JPEG ringing draws thin halos along edges; only stronger lines count as scratches then.
    blocky = damage.blockiness(image) >= classical.BLOCKY
    image, path = _clean_up(image, level.denoise, report, 10, 55)
    image = classical.remove_scratches(image, level.scratch_contrast * (1.5 if blocky else 1))
    report(70)
    if colourise:
        image = _colourise(image)
    amount, factor = _OLD_PHOTO_MODELS[model]
    if factor > 1:
        image, path = _enlarge(image, factor, OLD_PHOTO_MAX_EDGE, report)
    if amount:
        image = _sharpen_lightness(image, amount, 1.0)
    return image, path


def _scale(image: np.ndarray, options: Mapping[str, str], report: _ProgressReporter) -> _Outcome:
    kind = _option(options, "type", ("clean", "face"), "clean")
    factor_option = _option(options, "scale_factor", ("", "1", "2", "4"), "")
    if factor_option:
        factor = int(factor_option)
    else:
        factor = 2 if max(image.shape[:2]) <= AUTO_SCALE_MAX_EDGE else 1
    # Faces: a little more smoothing of measured grain keeps skin soft.
    image, path = _clean_up(image, 1.1 if kind == "face" else 1.0, report, 5, 40)
    if factor > 1:
        image, path = _enlarge(image, factor, SCALE_MAX_EDGE, report)
    return image, path


def _scale_pro(
    image: np.ndarray, options: Mapping[str, str], report: _ProgressReporter
) -> _Outcome:
    factor = 4 if _option(options, "type", ("0", "1"), "0") == "0" else 2
    image, path = _clean_up(image, 1.0, report, 5, 40)
    return _enlarge(image, factor, SCALE_PRO_MAX_EDGE, report)


def _colorize(image: np.ndarray, options: Mapping[str, str], report: _ProgressReporter) -> _Outcome:
    report(20)
    # A colour photo already has its colours; only grey and single-tint photos get a tint.
    return (_colourise(image) if _is_monochrome(image) else image), "classical"


def _correct(image: np.ndarray, options: Mapping[str, str], report: _ProgressReporter) -> _Outcome:
    # PicWish types: 0 crop (document), 1 text enhancement only, 2 both,
    # 3 crop (product), 4 crop + background removal (product; cropped only here).
    kind = _option(options, "type", ("0", "1", "2", "3", "4"), "1")
    if kind != "1":
        image = documents.crop_to_subject(image)
    report(50)
    if kind in ("1", "2"):
        image = documents.flatten_background(image)
    report(75)
    return _equalize_lightness(_auto_levels(image), 1.5), "classical"


OPERATIONS: dict[str, Callable[[np.ndarray, Mapping[str, str], _ProgressReporter], _Outcome]] = {
    "restoration-old-photo": _restore_old_photo,
    "scale": _scale,
    "scale-pro": _scale_pro,
    "colorization": _colorize,
    "correction": _correct,
}


def _clean_up(
    image: np.ndarray, strength: float, report: _ProgressReporter, start: int, end: int
) -> _Outcome:
    """JPEG blocks, then grain, each only where measured. JPEG damage goes to the learned
    model when it is installed and the photo is small enough for it."""
    if (
        damage.blockiness(image) >= classical.BLOCKY
        and learned.available()
        and learned.fits(image, 1)
    ):
        cleaned = learned.clean(image)
        if cleaned is not None:
            report(end)
            return cleaned, learned.NAME
    image = classical.deblock(image, strength)
    report((start + end) // 2)
    image = classical.denoise(image, strength)
    report(end)
    return image, "classical"


def _enlarge(image: np.ndarray, factor: int, max_edge: int, report: _ProgressReporter) -> _Outcome:
    path = "classical"
    height, width = image.shape[:2]
    scale = min(float(factor), max_edge / max(height, width))
    if scale > 1 and learned.available() and learned.fits(image, 2):
        # The model doubles; a 4x result is the model's 2x enlarged again classically.
        doubled = learned.enlarge_2x(image)
        if doubled is not None:
            report(75)
            return classical.upscale(doubled, scale / 2, max_edge) if scale > 2 else (
                _fit(doubled, image, scale)
            ), learned.NAME
    enlarged = classical.upscale(image, factor, max_edge)
    report(90)
    return enlarged, path


def _fit(doubled: np.ndarray, original: np.ndarray, scale: float) -> np.ndarray:
    """The model's 2x result resized to the `scale` asked for (at most 2)."""
    height, width = original.shape[:2]
    size = (round(width * scale), round(height * scale))
    if size == (doubled.shape[1], doubled.shape[0]):
        return doubled
    return cv2.resize(doubled, size, interpolation=cv2.INTER_AREA)


def _sharpen_lightness(image: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """Unsharp mask on lightness only, so edges crispen without colour fringes."""
    lab = cv2.cvtColor(image, cv2.COLOR_BGR2LAB)
    lab[:, :, 0] = classical.sharpen(np.ascontiguousarray(lab[:, :, 0]), amount, sigma)
    return cv2.cvtColor(lab, cv2.COLOR_LAB2BGR)


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


# --- helpers: tone (document correction) ----------------------------------------------


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


# --- helpers: colour --------------------------------------------------------------------


def _is_monochrome(image: np.ndarray) -> bool:
    """True for grayscale and single-tint (sepia, cyanotype) photos.

    In such photos the colour is (almost) a function of lightness alone, so predicting each
    pixel's chroma from the mean chroma of its lightness band leaves only a small residual.
    """
    # Blurring first stops colour noise from grain or scanning looking like real colour.
    small = cv2.GaussianBlur(damage.shrink(image, 256), (0, 0), 1.5)
    lab = cv2.cvtColor(small, cv2.COLOR_BGR2LAB).reshape(-1, 3).astype(np.float32)
    bands = lab[:, 0].astype(np.int32) // 8
    counts = np.maximum(np.bincount(bands, minlength=32), 1)
    residual = np.zeros(len(lab), dtype=np.float32)
    for channel in (1, 2):
        band_means = np.bincount(bands, weights=lab[:, channel], minlength=32) / counts
        residual += (lab[:, channel] - band_means[bands]) ** 2
    return float(np.percentile(np.sqrt(residual), 99)) < 8.0


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
