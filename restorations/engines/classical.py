"""Classical repair steps (OpenCV/NumPy). Each one measures its own damage and returns the
image unchanged when that damage is not there, so a clean photo passes through untouched.
"""

from __future__ import annotations

import cv2
import numpy as np

from restorations.engines import damage

# --- fading and colour casts ------------------------------------------------------------

# A photo with real blacks has its darkest 0.5 % below this lightness; a faded print does not.
FADED_BLACK = 40.0
# How far the darkest tones are brought back down, and the brightest up. Real photographs keep
# their darkest 0.5 % anywhere between 0 and about 35 (dim interiors, night, haze), so the
# fading is only undone as far as every one of them would still be at least as dark: a smaller
# gain than a full stretch, but never more contrast than the photo had.
_TARGET_BLACK, _TARGET_WHITE = 48.0, 240.0
_MID_GREY = 128.0
# Part of the measured cast that is removed. The black point's tint mixes the print's cast with
# the photo's own colours (a warm interior, a blue dusk); removing half of it never removes more
# than the cast on any photo of the benchmark, removing all of it removes real colour.
CAST_REMOVED = 0.5


def correct_fading(image: np.ndarray, tone: damage.Tone | None = None) -> np.ndarray:
    """Undo fading toward grey and part of the colour cast that came with it.

    Fading is measured as a lifted black point. Contrast is restored about mid-grey by the
    smaller of the gains the dark and the bright end allow (so no tones are clipped and the
    darkest tones stay at or above a photo's own darkest), and each channel's black point moves
    toward one neutral black by CAST_REMOVED of its distance, which lessens an additive cast.
    A photo with real blacks is returned as it is, whatever its colours.
    """
    tone = tone or damage.tone(image)
    if tone.black_lightness < FADED_BLACK:
        return image
    gain_dark = (_MID_GREY - _TARGET_BLACK) / max(_MID_GREY - tone.black_lightness, 1.0)
    gain_bright = (_TARGET_WHITE - _MID_GREY) / max(tone.white_lightness - _MID_GREY, 1.0)
    gain = max(1.0, min(gain_dark, gain_bright, 3.0))
    if gain == 1.0:
        return image
    luts = []
    for black in tone.black:
        levels = _MID_GREY + (np.arange(256, dtype=np.float32) - _MID_GREY) * gain
        # After the gain, the channel's black point sits this far from the grey one: the cast.
        shift = CAST_REMOVED * (black - tone.black_lightness) * gain
        luts.append(np.clip(levels - shift, 0, 255).round().astype(np.uint8))
    return cv2.merge([cv2.LUT(c, lut) for c, lut in zip(cv2.split(image), luts, strict=True)])


# --- JPEG blocks and noise --------------------------------------------------------------

BLOCKY = 0.8  # grey levels of extra step at 8 x 8 block edges before deblocking runs
NOISY = 2.5  # estimated noise sigma before denoising runs
_NLM_FULL_SEARCH_MAX_PIXELS = 4_500_000


def deblock(image: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Smooth JPEG block edges and ringing with an edge-preserving filter, as strong as the
    measured blockiness; photos without block artefacts come back unchanged."""
    blocks = damage.blockiness(image)
    if blocks < BLOCKY:
        return image
    sigma_colour = float(np.clip(10 * blocks * strength, 8, 40))
    return cv2.bilateralFilter(image, 5, sigma_colour, 3)


def denoise(image: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Non-local means with its filter strength set from the estimated noise level."""
    sigma = damage.noise_sigma(image)
    if sigma < NOISY:
        return image
    h = float(np.clip(sigma * strength, 2.0, 40.0))
    search = 21 if image.shape[0] * image.shape[1] <= _NLM_FULL_SEARCH_MAX_PIXELS else 11
    if damage.is_grey(image):
        grey = cv2.fastNlMeansDenoising(image[:, :, 0], None, h, 7, search)
        return cv2.merge((grey, grey, grey))
    return cv2.fastNlMeansDenoisingColored(image, None, h, h, 7, search)


# --- scratches and dust -----------------------------------------------------------------

SCRATCH_AREA_LIMIT = 0.04  # never inpaint more than this fraction of the photo
_CLUTTER = 0.25  # a scratch or speck in texture denser than this is not told from the texture


def scratch_mask(image: np.ndarray, contrast: float = 40.0) -> np.ndarray:
    """Long straight thin lines and isolated specks that stand out from their surroundings.

    Top-hat (bright) and black-hat (dark) responses with a small element keep only structures
    a few pixels wide. A scratch is a straight run of them (Hough segments at least 10
    elements long) through otherwise smooth surroundings; dust is a speck of a few pixels with
    nothing like it nearby. Texture, hair and edges are dense in such responses and are left
    alone; so is everything when the total would pass SCRATCH_AREA_LIMIT.
    """
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    size = max(5, min(gray.shape) // 400) | 1
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    window = (4 * size + 1, 4 * size + 1)
    # Edges of the photo with hairlines filtered out: a scratch crosses smooth areas, while
    # halos of JPEG ringing and thin real details run along an edge of larger structure. The
    # median removes lines up to about 3 px wide; anything wider keeps its own edges and is
    # left alone, since real detail of that width (a tripod leg, a mast) is as straight.
    background = cv2.medianBlur(gray, size + 2)
    edges = cv2.morphologyEx(background, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    edges = cv2.dilate(edges, np.ones((size, size), np.uint8)).astype(np.float32) / contrast
    lines = np.zeros(gray.shape, np.uint8)
    specks = np.zeros(gray.shape, np.uint8)
    for op in (cv2.MORPH_TOPHAT, cv2.MORPH_BLACKHAT):
        response = cv2.morphologyEx(gray, op, kernel)
        strong = (response >= contrast).astype(np.uint8)
        if not strong.any():
            continue
        clutter = cv2.boxFilter(strong.astype(np.float32), -1, window)
        lines |= _scratch_lines(strong, clutter, edges, size) & (response >= contrast / 2)
        specks |= _dust_specks(strong, clutter, size)
    # So many "scratches" or "specks" are a pattern of the photo itself, not damage.
    limit = SCRATCH_AREA_LIMIT * gray.size
    mask = (lines if lines.sum() <= limit else 0) | (specks if specks.sum() <= limit else 0)
    return cv2.dilate(np.asarray(mask, np.uint8), np.ones((3, 3), np.uint8))


def _scratch_lines(
    strong: np.ndarray, clutter: np.ndarray, edges: np.ndarray, size: int
) -> np.ndarray:
    length = 16 * size
    lines = cv2.HoughLinesP(strong, 1, np.pi / 360, length // 2, None, length, size // 2)
    drawn = np.zeros_like(strong)
    if lines is None:
        return drawn
    for x1, y1, x2, y2 in lines.reshape(-1, 4):
        count = max(abs(int(x2) - int(x1)), abs(int(y2) - int(y1))) + 1
        xs = np.linspace(x1, x2, count).round().astype(int)
        ys = np.linspace(y1, y2, count).round().astype(int)
        if np.median(clutter[ys, xs]) <= _CLUTTER and np.median(edges[ys, xs]) <= 1.0:
            cv2.line(drawn, (int(x1), int(y1)), (int(x2), int(y2)), 1, 3)
    return drawn


def _dust_specks(strong: np.ndarray, clutter: np.ndarray, size: int) -> np.ndarray:
    count, labels, stats, centroids = cv2.connectedComponentsWithStats(strong, connectivity=8)
    areas = stats[:, cv2.CC_STAT_AREA]
    small = (
        (areas <= 0.35 * size * size)
        & (stats[:, cv2.CC_STAT_WIDTH] <= size)
        & (stats[:, cv2.CC_STAT_HEIGHT] <= size)
    )
    xs = centroids[:, 0].round().astype(int).clip(0, strong.shape[1] - 1)
    ys = centroids[:, 1].round().astype(int).clip(0, strong.shape[0] - 1)
    window_area = (4 * size + 1) ** 2
    # Alone in its window: hardly more responding pixels around it than its own.
    alone = clutter[ys, xs] * window_area <= areas + 1
    keep = small & alone
    keep[0] = False
    return keep[labels].astype(np.uint8)


def remove_scratches(image: np.ndarray, contrast: float = 40.0) -> np.ndarray:
    mask = scratch_mask(image, contrast)
    if not mask.any():
        return image
    return cv2.inpaint(image, mask, 3, cv2.INPAINT_TELEA)


# --- enlarging and sharpening -----------------------------------------------------------

_BACK_PROJECTIONS = 3


def upscale(image: np.ndarray, factor: float, max_edge: int) -> np.ndarray:
    """Enlarge by `factor` (never past `max_edge`, never shrinking): Lanczos, then a few
    rounds of back-projection, so that the result shrunk back matches the photo."""
    height, width = image.shape[:2]
    scale = min(float(factor), max_edge / max(height, width))
    if scale <= 1:
        return image
    size = (min(max_edge, round(width * scale)), min(max_edge, round(height * scale)))
    return back_project(cv2.resize(image, size, interpolation=cv2.INTER_LANCZOS4), image)


def back_project(enlarged: np.ndarray, original: np.ndarray) -> np.ndarray:
    """Iterative back-projection: push the shrunk-back error up into the enlargement."""
    height, width = original.shape[:2]
    size = enlarged.shape[1], enlarged.shape[0]
    result = enlarged.astype(np.float32)
    low = original.astype(np.float32)
    for _ in range(_BACK_PROJECTIONS):
        error = low - cv2.resize(result, (width, height), interpolation=cv2.INTER_AREA)
        result += cv2.resize(error, size, interpolation=cv2.INTER_CUBIC)
    return np.clip(result, 0, 255).round().astype(np.uint8)


def sharpen(image: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    # Written into `blurred` so a very large upscaled image is not copied a third time.
    return cv2.addWeighted(image, 1 + amount, blurred, -amount, 0, dst=blurred)
