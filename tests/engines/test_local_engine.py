"""The built-in engine: pure image functions, so these tests need neither Django nor a DB."""

import io

import cv2
import numpy as np
import pytest
from PIL import Image
from skimage.metrics import structural_similarity

from benchmarks import photos as real
from restorations.engines import documents, learned, local

SIZE = 384
QUALITY_SEEDS = (1, 2, 3, 4, 5)
NOISE_SIGMA = 15.0
FADE_CONTRAST = 0.55
SEPIA_CAST_BGR = (-22.0, 10.0, 24.0)


# --- synthetic photos -------------------------------------------------------------------


def clean_photo(seed: int) -> np.ndarray:
    """Colour gradients, fine texture and solid shapes, spanning the full range per channel."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / (SIZE - 1)
    channels = []
    for angle in rng.uniform(0, 2 * np.pi, 3):
        ramp = np.cos(angle) * x + np.sin(angle) * y
        channels.append((ramp - ramp.min()) / (ramp.max() - ramp.min()) * 255)
    image = np.stack(channels, axis=-1)
    texture = cv2.GaussianBlur(rng.normal(0, 1, image.shape).astype(np.float32), (0, 0), 2)
    image += texture / texture.std() * 8
    for _ in range(6):
        colour = tuple(float(c) for c in rng.choice([0, 40, 200, 255], 3))
        corner = tuple(int(v) for v in rng.integers(40, SIZE - 40, 2))
        if rng.random() < 0.5:
            cv2.circle(image, corner, int(rng.integers(20, 70)), colour, -1, cv2.LINE_AA)
        else:
            w, h = (int(v) for v in rng.integers(30, 110, 2))
            far = (corner[0] + w, corner[1] + h)
            cv2.rectangle(image, corner, far, colour, -1, cv2.LINE_AA)
    for value in (255.0, 0.0):
        centre = tuple(int(v) for v in rng.integers(60, SIZE - 60, 2))
        cv2.circle(image, centre, 25, (value,) * 3, -1, cv2.LINE_AA)
    return to_uint8(image)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(image, 0, 255).round().astype(np.uint8)


def draw_scratches(image: np.ndarray, rng: np.random.Generator, lines=6, specks=40) -> None:
    """Thin bright and dark lines plus dust specks, drawn in place."""
    for i in range(lines + specks):
        value = float(rng.integers(225, 250) if i % 2 == 0 else rng.integers(10, 35))
        start = tuple(int(v) for v in rng.integers(0, SIZE, 2))
        if i < lines:
            end = tuple(int(v) for v in rng.integers(0, SIZE, 2))
            cv2.line(image, start, end, (value,) * 3, int(rng.integers(1, 3)), cv2.LINE_AA)
        else:
            cv2.circle(image, start, int(rng.integers(1, 3)), (value,) * 3, -1, cv2.LINE_AA)


def old_photo(clean: np.ndarray, seed: int) -> np.ndarray:
    """Fade toward grey with a sepia cast, scratch, then add film-grain-like noise."""
    rng = np.random.default_rng(seed + 1000)
    faded = 128 + (clean.astype(np.float32) - 128) * FADE_CONTRAST
    faded += np.array(SEPIA_CAST_BGR, dtype=np.float32)
    draw_scratches(faded, rng)
    faded += rng.normal(0, NOISE_SIGMA, faded.shape).astype(np.float32)
    return to_uint8(faded)


def psnr(reference: np.ndarray, image: np.ndarray) -> float:
    mse = np.mean((reference.astype(np.float64) - image.astype(np.float64)) ** 2)
    return float(10 * np.log10(255**2 / mse))


def grayscale_photo() -> np.ndarray:
    gray = cv2.cvtColor(clean_photo(7), cv2.COLOR_BGR2GRAY)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


def encoded(image: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(cv2.cvtColor(image, cv2.COLOR_BGR2RGB)).save(buffer, format=fmt)
    return buffer.getvalue()


def gradient(width: int, height: int) -> np.ndarray:
    """A cheap smooth image for size tests (no noise, so no denoising work)."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    return to_uint8(np.dstack(np.broadcast_arrays(x, (x + y) / 2, y)))


# --- restoration quality ----------------------------------------------------------------


@pytest.fixture(autouse=True)
def classical_only():
    """The optional learned model is benchmarked, not tested here: tests pin the classical path."""
    learned.use(False)
    yield
    learned.use(True)


REPAIR = {"restoration_type": "1", "change_color": "0"}


def real_photo(name: str, size: int = 256) -> np.ndarray:
    return real.crop(real.photo(name), size)


def ssim(reference: np.ndarray, image: np.ndarray) -> float:
    return structural_similarity(reference, image, channel_axis=2, data_range=255)


@pytest.mark.slow
def test_old_photo_restoration_gains_at_least_2_db_psnr():
    rows = []
    for seed in QUALITY_SEEDS[:3]:
        clean = clean_photo(seed)
        rows.append((f"generated {seed}", clean, old_photo(clean, seed)))
    for name in ("astronaut", "camera", "coins"):
        clean = real_photo(name, 320)
        rows.append((name, clean, real.add_noise(real.add_scratches(real.fade(clean)), 12)))

    gains = []
    print("\nphoto         PSNR damaged  PSNR restored   gain (dB)")
    for name, clean, damaged in rows:
        restored = local.restore(damaged, "restoration-old-photo", REPAIR)
        before, after = psnr(clean, damaged), psnr(clean, restored)
        gains.append(after - before)
        print(f"{name:<12}  {before:12.2f}  {after:13.2f}  {after - before:+10.2f}")
    print(f"mean gain: {np.mean(gains):+.2f} dB")
    assert np.mean(gains) >= 2.0
    assert min(gains) > 0


# --- do no harm, on real photographs ----------------------------------------------------


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "camera", "coins"])
@pytest.mark.parametrize("restoration_type", ["0", "1"])
def test_a_clean_photo_comes_back_from_repair_nearly_unchanged(name, restoration_type):
    clean = real_photo(name)
    options = {"restoration_type": restoration_type, "change_color": "0"}
    assert psnr(clean, local.restore(clean, "restoration-old-photo", options)) >= 35


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_enhance_and_colourisation_leave_a_clean_colour_photo_alone(name):
    clean = real_photo(name)
    for operation, options in (("scale", {"scale_factor": "1"}), ("colorization", {})):
        assert psnr(clean, local.restore(clean, operation, options)) >= 40, operation


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("astronaut", "jpeg q20"),
        ("chelsea", "noise 10"),
        ("rocket", "scratches+dust"),
        ("camera", "fade+cast"),
        ("chelsea", "fade+cast"),
        ("moon", "all together"),
        ("coins", "noise 25"),
        ("coffee", "all together"),
    ],
)
def test_repair_and_enhance_make_no_damaged_photo_worse(name, kind):
    clean = real_photo(name, 320)
    damaged = real.DAMAGES[kind](clean)
    for operation, options in (("restoration-old-photo", REPAIR), ("scale", {"scale_factor": "1"})):
        restored = local.restore(damaged, operation, options)
        assert psnr(clean, restored) >= psnr(clean, damaged) - 0.1, operation
        assert ssim(clean, restored) >= ssim(clean, damaged) - 0.001, operation


def test_a_real_photos_fading_and_cast_are_undone():
    clean = real_photo("astronaut")
    faded = real.fade(clean)
    restored = local.restore(faded, "restoration-old-photo", REPAIR)
    assert psnr(clean, restored) >= psnr(clean, faded) + 2


@pytest.mark.parametrize("name", ["astronaut", "camera"])
def test_2x_upscaling_is_closer_to_the_photo_than_bicubic(name):
    clean = real_photo(name, 320)
    small = real.downscale(clean)
    bicubic = cv2.resize(small, (320, 320), interpolation=cv2.INTER_CUBIC)
    enlarged = local.restore(small, "scale", {"scale_factor": "2"})
    assert psnr(clean, enlarged) >= psnr(clean, bicubic) + 0.3


def test_colourisation_gives_a_grey_photo_colour_on_its_own_lightness():
    grey = real_photo("camera")
    result = local.restore(grey, "colorization", {})
    lab = cv2.cvtColor(result, cv2.COLOR_BGR2LAB).astype(np.float32)
    assert np.hypot(lab[:, :, 1] - 128, lab[:, :, 2] - 128).mean() > 5
    lightness = cv2.cvtColor(grey, cv2.COLOR_BGR2LAB)[:, :, 0]
    assert psnr(lightness, cv2.cvtColor(result, cv2.COLOR_BGR2LAB)[:, :, 0]) >= 35


@pytest.mark.parametrize(
    ("photo", "value"),
    [("generated", 25), ("moon", 25), ("moon", 240)],
    ids=["dark on a generated photo", "dark on the moon", "bright on the moon"],
)
def test_a_hairline_scratch_is_inpainted_from_its_surroundings(photo, value):
    # A 1 px line, as an emulsion scratch is at this size; a line drawn 2 px thick is about
    # 4 px wide with anti-aliasing, as wide as real detail the detector must keep (the tripod
    # legs below).
    clean = clean_photo(11) if photo == "generated" else real.crop(real.photo(photo), SIZE)
    scratched = clean.copy()
    cv2.line(scratched, (20, 50), (360, 300), (value,) * 3, 1, cv2.LINE_AA)
    inside = np.abs(scratched.astype(int) - clean.astype(int)).max(axis=2) > 10

    restored = local.restore(scratched, "restoration-old-photo", REPAIR)

    def error_inside(image):
        return np.abs(image.astype(int) - clean.astype(int))[inside].mean()

    print(f"\nscratch error: {error_inside(scratched):.1f} -> {error_inside(restored):.1f}")
    assert inside.sum() > 300
    assert error_inside(restored) < error_inside(scratched) / 3


def test_thin_real_detail_is_not_taken_for_a_scratch():
    # The cameraman's tripod legs are long, straight, a few pixels wide and bright on grass.
    clean = real.photo("camera")
    assert psnr(clean, local.restore(clean, "restoration-old-photo", REPAIR)) >= 35


# --- decoding and encoding --------------------------------------------------------------


def test_decode_rejects_empty_garbage_and_truncated_data():
    png = encoded(clean_photo(1), "PNG")
    for data in (b"", b"not an image", png[: len(png) // 2]):
        with pytest.raises(local.CorruptImage):
            local.decode(data)


def test_decode_returns_three_channel_bgr_for_grayscale_and_alpha():
    gray = Image.fromarray(np.full((10, 20), 77, np.uint8))
    rgba = Image.new("RGBA", (20, 10), (255, 0, 0, 30))
    for image in (gray, rgba):
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        decoded = local.decode(buffer.getvalue())
        assert decoded.shape == (10, 20, 3)
        assert decoded.dtype == np.uint8
    assert tuple(decoded[0, 0]) == (0, 0, 255)  # red, in BGR order, alpha dropped


def test_decode_applies_exif_orientation():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), "white").save(buffer, format="JPEG", exif=exif)
    assert local.decode(buffer.getvalue()).shape == (40, 30, 3)


def test_decode_scales_16_bit_grayscale_instead_of_clipping():
    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8), 32768, np.uint16)).save(buffer, format="PNG")
    assert abs(int(local.decode(buffer.getvalue())[0, 0, 0]) - 128) <= 1


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_encode_produces_the_requested_format(fmt):
    data = local.encode(clean_photo(2), fmt)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == fmt
        assert image.size == (SIZE, SIZE)


# --- run() contract ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "options", "source_format", "expected_format"),
    [
        ("restoration-old-photo", {}, "JPEG", "JPEG"),
        (
            "restoration-old-photo",
            {"restoration_type": "2", "model_type": "3", "change_color": "1"},
            "PNG",
            "PNG",
        ),
        ("scale", {"type": "face", "scale_factor": "2"}, "PNG", "PNG"),
        ("scale", {"type": "clean", "scale_factor": ""}, "WEBP", "JPEG"),
        ("scale-pro", {"type": "0"}, "JPEG", "JPEG"),
        ("colorization", {"format": "webp"}, "PNG", "WEBP"),
        ("colorization", {}, "PNG", "JPEG"),
        ("correction", {"type": "2"}, "JPEG", "JPEG"),
    ],
)
def test_run_returns_the_declared_file_and_reports_progress(
    operation, options, source_format, expected_format
):
    small = cv2.resize(old_photo(clean_photo(3), 3), (96, 72), interpolation=cv2.INTER_AREA)
    calls = []

    result = local.run(
        encoded(small, source_format), operation, options, calls.append, source_format
    )

    assert result.format == expected_format
    assert result.extension == {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}[expected_format]
    with Image.open(io.BytesIO(result.data)) as image:
        assert image.format == expected_format
        assert image.size == (result.width, result.height)
    assert calls == sorted(calls)
    assert calls[-1] == 100
    assert all(0 <= percent <= 100 for percent in calls)
    assert len(calls) <= 12


def test_unknown_operation_and_invalid_option_raise_value_error():
    image = clean_photo(4)
    with pytest.raises(ValueError, match="Unknown operation"):
        local.restore(image, "sharpen-everything", {})
    with pytest.raises(ValueError, match="Unknown operation"):
        local.run(encoded(image, "PNG"), "sharpen-everything", {})
    with pytest.raises(ValueError, match="scale_factor"):
        local.restore(image, "scale", {"scale_factor": "3"})


# --- sizes ------------------------------------------------------------------------------


def test_scale_factor_2_doubles_each_side():
    result = local.restore(gradient(120, 90), "scale", {"type": "clean", "scale_factor": "2"})
    assert result.shape == (180, 240, 3)


def test_automatic_scale_doubles_up_to_2048_and_keeps_larger_images():
    assert local.restore(gradient(2048, 16), "scale", {}).shape == (32, 4096, 3)
    assert local.restore(gradient(2100, 16), "scale", {}).shape == (16, 2100, 3)


@pytest.mark.slow
def test_upscaling_never_exceeds_the_long_edge_caps():
    wide = gradient(3000, 1000)
    cases = [
        ("scale-pro", {"type": "0"}, 4096),
        ("scale-pro", {"type": "1"}, 4096),
        ("scale", {"scale_factor": "4"}, 8192),
        ("restoration-old-photo", {"restoration_type": "1", "model_type": "3"}, 4096),
    ]
    for operation, options, cap in cases:
        height, width = local.restore(wide, operation, options).shape[:2]
        assert width == cap, operation
        assert abs(width / height - 3) < 0.01, operation


def test_old_photo_model_3_doubles_a_small_photo():
    image = gradient(100, 80)
    options = {"restoration_type": "1", "model_type": "3", "change_color": "0"}
    assert local.restore(image, "restoration-old-photo", options).shape == (160, 200, 3)


# --- document correction ----------------------------------------------------------------

DOC_WIDTH, DOC_HEIGHT = 240, 320


def photographed_document() -> np.ndarray:
    """A white page with lines of dark 'words', turned 12 degrees on a dark desk."""
    rng = np.random.default_rng(5)
    page = np.full((DOC_HEIGHT, DOC_WIDTH, 3), 235, np.uint8)
    for top in range(24, DOC_HEIGHT - 24, 18):
        left = 16
        while left < DOC_WIDTH - 40:
            width = int(rng.integers(10, 34))
            cv2.rectangle(page, (left, top), (left + width, top + 7), (25, 25, 25), -1)
            left += width + 7
    corners = cv2.boxPoints(((320, 280), (DOC_WIDTH, DOC_HEIGHT), 12)).astype(np.float32)
    source = np.array(
        [[0, DOC_HEIGHT - 1], [0, 0], [DOC_WIDTH - 1, 0], [DOC_WIDTH - 1, DOC_HEIGHT - 1]],
        np.float32,
    )
    matrix = cv2.getPerspectiveTransform(source, corners)
    desk = to_uint8(35 + rng.normal(0, 4, (560, 640, 3)))
    on_page = cv2.warpPerspective(np.full(page.shape[:2], 255, np.uint8), matrix, (640, 560))
    warped = cv2.warpPerspective(page, matrix, (640, 560))
    desk[on_page > 0] = warped[on_page > 0]
    return desk


def test_correction_crops_and_straightens_a_photographed_page():
    photo = photographed_document()

    result = local.restore(photo, "correction", {"type": "0"})

    height, width = result.shape[:2]
    assert abs(width - DOC_WIDTH) <= 0.1 * DOC_WIDTH
    assert abs(height - DOC_HEIGHT) <= 0.1 * DOC_HEIGHT
    gray = cv2.cvtColor(result, cv2.COLOR_BGR2GRAY)
    assert (gray > 128).mean() > 0.6
    # Straight text leaves whole rows of bare paper between its lines; turned text does not.
    centre = gray[:, width // 10 : -width // 10]
    assert (centre.min(axis=1) > 128).mean() > 0.25


@pytest.mark.parametrize(("background", "turn", "seed"), [("coffee", 12, 0), ("rocket", 20, 2)])
def test_the_page_is_found_in_a_photographed_document_on_a_real_photo(background, turn, seed):
    image, corners = real.photographed_document(background, turn, seed)

    found = documents.find_page(image)

    assert found is not None
    assert np.linalg.norm(found - corners, axis=1).mean() <= 0.01 * np.hypot(*image.shape[:2])


def test_correction_crops_a_print_out_of_a_uniform_scanner_frame():
    framed = np.full((300, 400, 3), 20, np.uint8)
    framed[40:260, 60:340] = cv2.resize(clean_photo(6), (280, 220))

    height, width = local.restore(framed, "correction", {"type": "3"}).shape[:2]

    assert abs(height - 220) <= 3
    assert abs(width - 280) <= 3


def test_correction_trims_uniform_borders_around_a_subject_without_straight_edges():
    framed = np.full((300, 400, 3), 230, np.uint8)
    cv2.ellipse(framed, (200, 150), (120, 90), 0, 0, 360, (40, 90, 160), -1)

    height, width = local.restore(framed, "correction", {"type": "3"}).shape[:2]

    assert abs(height - 181) <= 3
    assert abs(width - 241) <= 3


# --- colour -----------------------------------------------------------------------------


def test_colorization_gives_a_grayscale_photo_some_colour():
    gray = grayscale_photo()

    result = local.restore(gray, "colorization", {"format": "png"})

    blue, red = result[:, :, 0].astype(int), result[:, :, 2].astype(int)
    assert np.abs(red - blue).mean() > 3
    # The tint rides on the photo's own lightness, which stays (almost) unchanged.
    lightness_before = cv2.cvtColor(gray, cv2.COLOR_BGR2LAB)[:, :, 0].astype(int)
    lightness_after = cv2.cvtColor(result, cv2.COLOR_BGR2LAB)[:, :, 0].astype(int)
    assert np.abs(lightness_after - lightness_before).mean() < 3


def test_colorization_png_option_yields_png_bytes():
    result = local.run(encoded(grayscale_photo(), "JPEG"), "colorization", {"format": "png"})
    assert result.format == "PNG"
    assert result.data.startswith(b"\x89PNG\r\n\x1a\n")


def test_old_photo_change_color_only_colours_when_asked():
    gray = grayscale_photo()
    options = {"restoration_type": "0"}

    kept = local.restore(gray, "restoration-old-photo", {**options, "change_color": "0"})
    coloured = local.restore(gray, "restoration-old-photo", {**options, "change_color": "1"})

    def colourfulness(image):
        return np.abs(image[:, :, 2].astype(int) - image[:, :, 0].astype(int)).mean()

    assert colourfulness(kept) < 1
    assert colourfulness(coloured) > 3


def test_old_photo_keeps_the_colours_of_a_colour_photo():
    photo = clean_photo(8)
    result = local.restore(photo, "restoration-old-photo", {"change_color": "1"})
    chroma_before = cv2.cvtColor(photo, cv2.COLOR_BGR2LAB)[:, :, 1:].astype(int)
    chroma_after = cv2.cvtColor(result, cv2.COLOR_BGR2LAB)[:, :, 1:].astype(int)
    assert np.abs(chroma_after - chroma_before).mean() < 6
