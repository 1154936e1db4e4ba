"""The before/after example on the home page: `make home-example`.

scikit-image's photograph of a cat (`chelsea`, resized to a 640 px long edge) is faded, given a
sepia cast, hairline scratches, dust and grain, then repaired by the built-in engine's old-photo
repair (medium damage, no colourising) on its classical path, as a task on a fresh install
would run it. The two images are written to static/img/ and committed; this script makes them
again. Everything is seeded, so a run on the same engine writes the same pixels.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import photos  # noqa: E402
from restorations.engines import learned, local  # noqa: E402

PHOTO = "chelsea"
LONG_EDGE = 640
REPAIR = {"restoration_type": "1", "change_color": "0"}  # medium damage, keep the colours
BEFORE, AFTER = "example-before.jpg", "example-after.jpg"
JPEG_QUALITY = 85
SEED = 5


def hairline_scratches(image: np.ndarray, seed: int, lines: int = 6, specks: int = 40):
    """Bright and dark scratches 1 px wide, as an emulsion scratch is at this size, and dust
    specks of radius 1 (benchmarks/photos.py draws wider ones, which the engine leaves alone
    as it would real detail)."""
    rng = np.random.default_rng(seed)
    damaged = image.copy()
    height, width = image.shape[:2]
    for i in range(lines + specks):
        value = float(rng.integers(225, 250) if i % 2 == 0 else rng.integers(10, 35))
        start = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if i < lines:
            end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(damaged, start, end, (value,) * 3, 1, cv2.LINE_AA)
        else:
            cv2.circle(damaged, start, 1, (value,) * 3, -1, cv2.LINE_AA)
    return damaged


def example() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(clean, damaged, repaired), BGR."""
    clean = photos.photo(PHOTO, LONG_EDGE)
    faded = photos.fade(clean, contrast=0.7, cast=(-14.0, 6.0, 16.0))
    damaged = photos.add_noise(hairline_scratches(faded, SEED), sigma=8, seed=SEED)
    # The classical path, which every install has: the images do not depend on the optional
    # learned model being installed where they are made.
    learned.use(False)
    try:
        repaired = local.restore(damaged, "restoration-old-photo", REPAIR)
    finally:
        learned.use(True)
    return clean, damaged, repaired


def write(folder: Path) -> tuple[Path, Path]:
    _, damaged, repaired = example()
    paths = folder / BEFORE, folder / AFTER
    for path, image in zip(paths, (damaged, repaired), strict=True):
        ok = cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
        if not ok:
            raise OSError(f"could not write {path}")
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=ROOT / "static" / "img")
    for path in write(parser.parse_args().folder):
        print(path)


if __name__ == "__main__":
    main()
