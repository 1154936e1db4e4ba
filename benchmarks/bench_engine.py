"""Quality, speed and memory of the built-in engine on real photographs: `make bench-engine`.

Seven photographs from scikit-image (benchmarks/photos.py), resized to a 640 px long edge, get
each kind of damage; every operation is scored with PSNR and SSIM against the clean photo,
before and after, with its time and peak memory (tracemalloc). Then a 12-megapixel photo goes
through each operation in a subprocess of its own (wall time, peak resident memory), and the
targets are checked. With the optional learned model installed, everything runs once per
path: "classical" (model turned off) and "auto" (the model where it applies).

    make bench-engine BENCH_ARGS="--gallery docs/images"
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import cv2
import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import photos  # noqa: E402
from restorations.engines import documents, learned, local  # noqa: E402

REPAIR = ("restoration-old-photo", {"restoration_type": "1", "change_color": "0"})
LIGHT = ("restoration-old-photo", {"restoration_type": "0", "change_color": "0"})
ENHANCE = ("scale", {"type": "clean", "scale_factor": "1"})
UPSCALE = ("scale", {"type": "clean", "scale_factor": "2"})
DOCUMENT_SCENES = (("coffee", 12), ("chelsea", -8), ("rocket", 20))
GALLERY = (("astronaut", "all together"), ("camera", "fade+cast"), ("coffee", "jpeg q20"))
SPEED_CASES = (
    ("restoration-old-photo", {"restoration_type": "2", "change_color": "1"}),
    ("restoration-old-photo", {"restoration_type": "1", "model_type": "3"}),
    ("scale", {"scale_factor": "1"}),
    ("scale-pro", {"type": "1"}),
    ("colorization", {}),
    ("correction", {"type": "2"}),
)


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    return float(peak_signal_noise_ratio(reference, image, data_range=255))


def ssim(reference: np.ndarray, image: np.ndarray) -> float:
    return float(structural_similarity(reference, image, channel_axis=2, data_range=255))


def timed(image: np.ndarray, operation: str, options: dict[str, str]):
    """restore() with wall time and tracemalloc's peak; also the path the engine took."""
    data = local.encode(image, "PNG")
    tracemalloc.start()
    started = time.perf_counter()
    result = local.run(data, operation, options, source_format="PNG")
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return local.decode(result.data), seconds, peak / 2**20, result.path


def score_damage(path_name: str, label: str, case, clean: dict, damaged: dict) -> list[dict]:
    operation, options = case
    rows = []
    print(f"\n[{path_name}] {label}: {operation} {options}")
    print(
        f"  {'photo':<10} {'damage':<15} {'PSNR before':>11} {'after':>7} {'gain':>7} "
        f"{'SSIM before':>11} {'after':>6}  {'s':>5} {'MiB':>5}  path"
    )
    for (name, kind), image in damaged.items():
        restored, seconds, mib, path = timed(image, operation, options)
        reference = clean[name]
        row = {
            "photo": name,
            "damage": kind,
            "psnr_before": psnr(reference, image),
            "psnr_after": psnr(reference, restored),
            "ssim_before": ssim(reference, image),
            "ssim_after": ssim(reference, restored),
            "seconds": seconds,
            "megapixels": image.shape[0] * image.shape[1] / 1e6,
            "mib": mib,
            "path": path,
        }
        rows.append(row)
        gain = row["psnr_after"] - row["psnr_before"]
        print(
            f"  {name:<10} {kind:<15} {row['psnr_before']:11.2f} {row['psnr_after']:7.2f} "
            f"{gain:+7.2f} {row['ssim_before']:11.3f} {row['ssim_after']:6.3f}  "
            f"{seconds:5.2f} {mib:5.0f}  {path}"
        )
    summarise(rows)
    return rows


def summarise(rows: list[dict]) -> None:
    gains = [r["psnr_after"] - r["psnr_before"] for r in rows]
    ssim_gains = [r["ssim_after"] - r["ssim_before"] for r in rows]
    print(
        f"  mean: PSNR {statistics.mean(r['psnr_before'] for r in rows):.2f} -> "
        f"{statistics.mean(r['psnr_after'] for r in rows):.2f} dB ({statistics.mean(gains):+.2f}),"
        f" SSIM {statistics.mean(r['ssim_before'] for r in rows):.3f} -> "
        f"{statistics.mean(r['ssim_after'] for r in rows):.3f} "
        f"({statistics.mean(ssim_gains):+.3f}),"
        f" worst case {min(gains):+.2f} dB / {min(ssim_gains):+.3f}"
    )
    kinds = dict.fromkeys(r["damage"] for r in rows)
    for kind in kinds:
        subset = [g for g, r in zip(gains, rows, strict=True) if r["damage"] == kind]
        print(f"    {kind:<15} mean gain {statistics.mean(subset):+.2f} dB")


def harmed(rows: list[dict]) -> list[dict]:
    """Cases more than 0.1 dB worse, or lower in SSIM (to 3 decimals)."""
    return [
        r
        for r in rows
        if r["psnr_after"] < r["psnr_before"] - 0.1
        or round(r["ssim_after"], 3) < round(r["ssim_before"], 3)
    ]


def upscaling(path_name: str, names: list[str]) -> list[float]:
    """2x enlargement of each photo shrunk to half size (INTER_AREA), against bicubic
    (INTER_CUBIC), both compared with the photo. The photos are used at their own resolution:
    the 640 px copies of the other tests are themselves enlarged by interpolation for most
    photos, which has no detail left for any upscaler to restore."""
    operation, options = UPSCALE
    print(f"\n[{path_name}] 2x upscaling of the photo (own resolution) shrunk to half size")
    gains = []
    for name in names:
        reference = photos.native(name)
        small = photos.downscale(reference)
        height, width = small.shape[0] * 2, small.shape[1] * 2
        reference = reference[:height, :width]
        bicubic = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        enlarged, seconds, mib, path = timed(small, operation, options)
        gain = psnr(reference, enlarged) - psnr(reference, bicubic)
        gains.append(gain)
        print(
            f"  {name:<10} bicubic {psnr(reference, bicubic):6.2f} dB, engine "
            f"{psnr(reference, enlarged):6.2f} dB ({gain:+.2f}); {seconds:5.2f} s {mib:5.0f} MiB"
            f"  {path}"
        )
    print(f"  mean gain over bicubic: {statistics.mean(gains):+.2f} dB")
    return gains


def clean_passes(path_name: str, clean: dict) -> dict[str, float]:
    """How far each operation that should leave a clean photo alone moves it (PSNR)."""
    print(f"\n[{path_name}] clean photos through operations that should leave them alone")
    cases = {
        "light repair": LIGHT,
        "medium repair": REPAIR,
        "enhance 1x": ENHANCE,
        "colourise (colour photo)": ("colorization", {"format": "png"}),
    }
    worst = {}
    for label, (operation, options) in cases.items():
        values = []
        for name, image in clean.items():
            if label.startswith("colourise") and name not in photos.COLOUR_PHOTOS:
                continue
            values.append(psnr(image, timed(image, operation, options)[0]))
        if not values:
            continue
        worst[label] = min(values)
        print(f"  {label:<26} min {min(values):6.2f} dB, mean {statistics.mean(values):6.2f} dB")
    return worst


def colourisation(clean: dict) -> list[tuple[float, float]]:
    print(
        "\ncolourisation of grey photos: mean chroma (LAB a/b distance from neutral) and "
        "lightness PSNR"
    )
    results = []
    for name in [name for name in photos.GREY_PHOTOS if name in clean]:
        image = clean[name]
        result = timed(image, "colorization", {"format": "png"})[0]
        lab = cv2.cvtColor(result, cv2.COLOR_BGR2LAB).astype(np.float32)
        chroma = float(np.hypot(lab[:, :, 1] - 128, lab[:, :, 2] - 128).mean())
        lightness = psnr(
            cv2.cvtColor(image, cv2.COLOR_BGR2LAB)[:, :, 0],
            cv2.cvtColor(result, cv2.COLOR_BGR2LAB)[:, :, 0],
        )
        results.append((chroma, lightness))
        print(f"  {name:<10} chroma {chroma:5.1f}, lightness PSNR {lightness:6.2f} dB")
    return results


def correction() -> list[float]:
    """Mean corner error of the page found in each photographed document, as a fraction of
    the image diagonal (infinite when no page is found)."""
    print("\ncrop-and-correct: page corners found in photographed documents")
    errors = []
    for seed, (background, turn) in enumerate(DOCUMENT_SCENES):
        image, corners = photos.photographed_document(background, turn, seed)
        found = documents.find_page(image)
        diagonal = float(np.hypot(*image.shape[:2]))
        if found is None:
            errors.append(float("inf"))
            print(f"  page on {background:<9} turned {turn:+3d} deg: page not found")
            continue
        distances = np.linalg.norm(found - corners, axis=1)
        errors.append(float(distances.mean()) / diagonal)
        print(
            f"  page on {background:<9} turned {turn:+3d} deg: corner error mean "
            f"{distances.mean():5.1f} px, worst {distances.max():5.1f} px "
            f"({distances.mean() / diagonal:.2%} of the diagonal)"
        )
    return errors


def speed(megapixels: float) -> list[dict]:
    """Each operation on a 12-megapixel photo in a fresh subprocess: time and peak RSS.

    The photo (astronaut enlarged, faded and grainy, as a JPEG) is made here, so the child's
    peak resident memory is the engine's own plus the interpreter and libraries."""
    print(f"\n{megapixels:.0f}-megapixel photo, one subprocess per operation (one core each)")
    width = round((megapixels * 1e6 * 4 / 3) ** 0.5)
    height = round(width * 3 / 4)
    image = cv2.resize(photos.photo("astronaut"), (width, height), interpolation=cv2.INTER_CUBIC)
    image = photos.add_noise(photos.fade(image), 8)
    folder = tempfile.TemporaryDirectory()
    source = Path(folder.name) / "large.jpg"
    source.write_bytes(local.encode(image, "JPEG"))
    del image
    rows = []
    for operation, options in SPEED_CASES:
        output = (
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    json.dumps([operation, options, str(source)]),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        row = json.loads(output)
        rows.append(row)
        print(
            f"  {operation:<22} {json.dumps(options):<50} {row['seconds']:6.1f} s "
            f"({row['seconds'] / megapixels:4.2f} s/MP) {row['rss_mib']:6.0f} MiB "
            f"progress {row['progress']}  {row['path']}"
        )
    folder.cleanup()
    return rows


def peak_rss_mib() -> float:
    """This process's peak resident memory. ru_maxrss is not used: Linux carries it over from
    the parent's copy of itself before exec, so every child would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(spec: str) -> None:
    operation, options, source = json.loads(spec)
    cv2.setNumThreads(1)
    data = Path(source).read_bytes()
    calls: list[int] = []
    started = time.perf_counter()
    result = local.run(data, operation, options, calls.append)
    seconds = time.perf_counter() - started
    rss = peak_rss_mib()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rss_mib": rss,
                "progress": calls,
                "path": result.path,
                "size": [result.width, result.height],
            }
        )
    )


def save_gallery(folder: Path, clean: dict, damaged: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, kind in GALLERY:
        image = damaged[(name, kind)]
        restored = timed(image, *REPAIR)[0]
        tiles = [photos.crop(tile, 320) for tile in (image, restored, clean[name])]
        strip = np.hstack([np.pad(t, ((0, 0), (0, 4), (0, 0)), constant_values=255) for t in tiles])
        target = folder / f"engine-{name}-{kind.replace(' ', '-').replace('+', '-')}.jpg"
        cv2.imwrite(str(target), strip[:, :-4], [cv2.IMWRITE_JPEG_QUALITY, 82])
        print(f"gallery: {target} (damaged | restored | clean)")


def check(label: str, holds: bool) -> bool:
    print(f"  [{'PASS' if holds else 'FAIL'}] {label}")
    return holds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--photos", nargs="+", default=list(photos.PHOTOS))
    parser.add_argument("--gallery", type=Path, help="write before/after/clean JPEGs here")
    parser.add_argument("--megapixels", type=float, default=12.0)
    parser.add_argument("--no-speed", action="store_true", help="skip the large-photo runs")
    parser.add_argument("--classical-only", action="store_true", help="skip the learned path")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child)
        return
    cv2.setNumThreads(1)
    clean = {name: photos.photo(name) for name in args.photos}
    damaged = {
        (name, kind): hurt(clean[name]) for name in clean for kind, hurt in photos.DAMAGES.items()
    }
    paths = ["classical"] + (["auto"] if learned.installed() and not args.classical_only else [])
    print(
        f"Photos: {', '.join(clean)} at {photos.LONG_EDGE} px; damage: "
        f"{', '.join(photos.DAMAGES)}; paths: {', '.join(paths)}"
        f"{'' if learned.installed() else ' (learned model not installed)'}"
    )
    results = {}
    for path_name in paths:
        learned.use(path_name == "auto")
        repair = score_damage(path_name, "old-photo repair, medium", REPAIR, clean, damaged)
        enhance = score_damage(path_name, "enhance", ENHANCE, clean, damaged)
        results[path_name] = {
            "repair": repair,
            "enhance": enhance,
            "upscale": upscaling(path_name, list(clean)),
            "clean": clean_passes(path_name, clean),
        }
    learned.use(True)
    colours = colourisation(clean)
    corners = correction()
    speed_rows = [] if args.no_speed else speed(args.megapixels)
    if args.gallery:
        save_gallery(args.gallery, clean, damaged)

    print("\nSeconds per megapixel at 640 px (mean over cases), per path the engine reported:")
    for path_name, result in results.items():
        per_path: dict[str, list[float]] = {}
        for row in result["repair"] + result["enhance"]:
            per_path.setdefault(row["path"], []).append(row["seconds"] / row["megapixels"])
        print(
            f"  [{path_name}] "
            + ", ".join(
                f"{name}: {statistics.mean(v):.2f} s/MP ({len(v)} runs)"
                for name, v in per_path.items()
            )
        )

    print("\nTargets:")
    ok = True
    for path_name, result in results.items():
        repair, enhance = result["repair"], result["enhance"]
        gain = statistics.mean(r["psnr_after"] - r["psnr_before"] for r in repair)
        ok &= check(
            f"[{path_name}] old-photo repair mean PSNR gain {gain:+.2f} dB >= +2 dB", gain >= 2
        )
        for label, rows in (("old-photo repair", repair), ("enhance", enhance)):
            bad = harmed(rows)
            ok &= check(
                f"[{path_name}] {label}: no case worse by > 0.1 dB or lower in SSIM "
                f"({len(bad)} of {len(rows)}"
                f"{': ' + ', '.join(r['photo'] + '/' + r['damage'] for r in bad) if bad else ''})",
                not bad,
            )
        light = result["clean"]["light repair"]
        ok &= check(
            f"[{path_name}] clean photo through light repair: min {light:.2f} dB >= 35 dB",
            light >= 35,
        )
        up = statistics.mean(result["upscale"])
        held = check(f"[{path_name}] 2x upscaling mean {up:+.2f} dB over bicubic >= +1 dB", up >= 1)
        ok &= held or path_name == "classical" and len(results) > 1
    chroma_ok = all(c > 5 and light >= 35 for c, light in colours)
    ok &= check(
        "colourisation: grey photos mean chroma > 5 with lightness PSNR >= 35 dB", chroma_ok
    )
    ok &= check(
        f"crop-and-correct: every page found, mean corner error <= 1 % of the diagonal "
        f"(worst scene {max(corners):.2%})",
        max(corners) <= 0.01,
    )
    if speed_rows:
        slowest = max(r["seconds"] for r in speed_rows)
        largest = max(r["rss_mib"] for r in speed_rows)
        ok &= check(
            f"{args.megapixels:.0f} MP: every operation within 60 s (slowest {slowest:.1f} s)"
            f" and 1.5 GB (largest {largest:.0f} MiB)",
            slowest <= 60 and largest <= 1536,
        )
    print("All targets hold." if ok else "Some targets do not hold.")


if __name__ == "__main__":
    main()
