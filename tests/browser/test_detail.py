"""A restored photo's page in Chromium: the before-and-after slider by keyboard and by pointer,
both images in one box, and the result's download name. Leaves a screenshot of the page
(docs/screenshots/detail-slider.png under `make screenshots`)."""

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image
from skimage import data as samples

from restorations.jobs import services
from tests.browser.support import screenshot
from tests.factories import wait_until_final

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def worn_photo() -> bytes:
    """scikit-image's cat, small, faded towards yellow, grainy and saved as a poor JPEG."""
    cat = Image.fromarray(samples.chelsea()).resize((300, 200), Image.Resampling.LANCZOS)
    pixels = np.asarray(cat, dtype=np.float32)
    faded = pixels * 0.7 + np.array([80, 62, 30], dtype=np.float32)
    grain = np.random.default_rng(3).normal(0, 10, pixels.shape)
    worn = np.clip(faded + grain, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(worn).save(buffer, format="JPEG", quality=35)
    return buffer.getvalue()


@pytest.fixture
def restored(studio, alice, celery_worker_thread):
    task = services.create_task(
        team=studio,
        user=alice,
        file=SimpleUploadedFile("Grandad's cat 1961.jpg", worn_photo(), "image/jpeg"),
        file_name="Grandad's cat 1961.jpg",
        operation="restoration-old-photo",
        options={"restoration_type": "1", "model_type": "3"},  # repaired and enlarged 2x
    )
    return wait_until_final(task)


def _sign_in(page, live_server):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()


def _box(locator) -> dict:
    return locator.bounding_box()


def test_compare_by_keyboard_and_pointer_then_download(page, live_server, restored, tmp_path):
    assert restored.result_width == 2 * restored.upload.width  # the result is twice as large
    _sign_in(page, live_server)
    page.goto(f"{live_server.url}/tasks/{restored.public_id}/")
    page.get_by_role("heading", name="Before and after").wait_for()
    before = page.get_by_role("img", name="Before: the original photo")
    after = page.get_by_role("img", name="After: the restored photo")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#compare img')].every(i => i.naturalWidth > 0)"
    )
    natural = [image.evaluate("i => i.naturalWidth") for image in (before, after)]
    assert natural == [restored.upload.width, restored.result_width]
    assert _box(before) == _box(after)  # drawn in the same box, so at the same zoom

    box = _box(page.locator("#compare"))
    divider = page.locator(".compare-divider")
    slider = page.get_by_label("Split between before and after")
    assert slider.input_value() == "50"
    start = _box(divider)["x"]

    slider.focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")
    assert slider.input_value() == "70"
    assert slider.get_attribute("aria-valuetext") == "70% before, 30% after"
    assert after.evaluate("i => getComputedStyle(i).clipPath") == "inset(0px 0px 0px 70%)"
    moved = _box(divider)["x"] - start
    assert moved == pytest.approx(0.2 * box["width"], abs=2)
    page.keyboard.press("Home")
    assert slider.input_value() == "0"

    box = _box(page.locator("#compare"))  # where it is now that the slider has focus
    page.mouse.click(box["x"] + box["width"] * 0.25, box["y"] + box["height"] / 2)
    assert slider.input_value() == "25"
    page.mouse.move(box["x"] + box["width"] * 0.4, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] / 2, steps=5)
    page.mouse.up()
    assert slider.input_value() == "55"
    assert _box(divider)["x"] == pytest.approx(box["x"] + box["width"] * 0.55 - 1, abs=2)

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download result").click()
    download = download_info.value
    assert download.suggested_filename == "Grandad's cat 1961-restored.jpg"
    saved = tmp_path / "result.jpg"
    download.save_as(saved)
    assert saved.read_bytes() == restored.result.open("rb").read()

    box = _box(page.locator("#compare"))
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    screenshot(page, "detail-slider")
