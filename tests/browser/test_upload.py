"""The upload page and the batch page in real Chromium, against a live server and the real
worker: five photos dropped at once, two of them bad, each with its own progress and outcome."""

import base64

import pytest
from playwright.sync_api import expect

from restorations.jobs import services
from restorations.jobs.models import Batch, Task
from restorations.jobs.operations import MB, SPECS
from restorations.jobs.states import State, describe
from tests.browser.support import (
    PHONE_WIDTH,
    axe_violations,
    no_horizontal_scroll,
    screenshot,
    sign_in,
    too_wide,
)
from tests.browser.support import (
    describe as describe_violations,
)
from tests.factories import listed_tasks, photo_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
OLD_PHOTO = SPECS["restoration-old-photo"]

# Builds the files in the page and drops them on the drop zone as one drop. The huge one is
# made there, zeros behind a PNG's name: the page must refuse it by its size alone.
DROP = """([files, hugeBytes]) => {
  const transfer = new DataTransfer();
  for (const [name, type, data] of files) {
    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name, { type }));
  }
  transfer.items.add(new File([new Uint8Array(hugeBytes)], "huge.png", { type: "image/png" }));
  return transfer;
}"""


def _sign_in(page, live_server, user):
    """Signed in, on the upload page."""
    sign_in(page, live_server, user)
    page.goto(f"{live_server.url}/tasks/new/")


def _row(page, name):
    """A photo's row on the upload page, or on the batch page by its link."""
    return page.locator(f"tr[data-name='{name}'], tr:has(a:text-is('{name}'))")


def test_five_dropped_photos_two_bad_each_with_its_own_outcome_and_the_batch_page(
    page, live_server, celery_worker_thread, alice
):
    sent = []
    page.on(
        "request",
        lambda request: (
            sent.append(request.post_data_buffer)
            if request.url.endswith("/tasks/new/photo/")
            else None
        ),
    )
    _sign_in(page, live_server, alice)
    good = [
        ("Grandma 1952.jpg", "image/jpeg", photo_bytes(320, 240, fmt="JPEG", seed=1)),
        ("Wedding.png", "image/png", photo_bytes(240, 320, fmt="PNG", seed=2)),
        ("Harbour.jpg", "image/jpeg", photo_bytes(300, 200, fmt="JPEG", seed=3)),
    ]
    whole = photo_bytes(400, 300, fmt="JPEG", seed=5)
    corrupt = ("Corrupt.jpg", "image/jpeg", whole[: len(whole) // 3])
    files = [good[0], corrupt, good[1], good[2]]
    encoded = [(name, kind, base64.b64encode(data).decode()) for name, kind, data in files]
    transfer = page.evaluate_handle(DROP, [encoded, OLD_PHOTO.max_bytes + MB])
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})

    # Refused in the browser by its size, with the server's own sentence, and never sent.
    _row(page, "huge.png").get_by_text(
        "The file is 21.0\xa0MB; Old-photo repair accepts up to 20.0\xa0MB."
    ).wait_for()
    for name, _kind, _data in good:
        _row(page, name).get_by_text("Ready").wait_for()
    price = OLD_PHOTO.credits_per_photo({}, 320, 240)
    total = page.locator("#selection-total")
    assert total.inner_text().startswith(f"Total for 4 photos: about {4 * price} credits.")

    page.get_by_role("button", name="Upload and restore").click()
    page.get_by_text("3 photos uploaded, 2 not (the reason is next to each).").wait_for()

    for name, _kind, _data in good:
        row = _row(page, name)
        assert row.get_by_role("link", name="Uploaded: see its restoration").is_visible()
        progress = row.locator("progress")
        assert progress.is_visible() and progress.get_attribute("aria-label") == f"Upload of {name}"
        assert progress.evaluate("bar => bar.value") == 100
    # Sent, and refused by the server: its reason next to its name, its bar gone.
    corrupt_row = _row(page, "Corrupt.jpg")
    assert "The photo is damaged or incomplete" in corrupt_row.locator(".file-message").inner_text()
    assert corrupt_row.locator("progress").is_hidden()
    assert corrupt_row.get_by_role("link").count() == 0
    assert len(sent) == 4  # the three good photos and the corrupt one; never the huge one
    assert total.inner_text().startswith(f"Total for 3 photos: about {3 * price} credits.")
    screenshot(page, "upload")

    batch = Batch.objects.get()
    assert sorted(batch.tasks.values_list("upload__original_name", flat=True)) == sorted(
        name for name, _kind, _data in good
    )
    page.get_by_role("link", name="See this upload's photos").click()
    page.get_by_role("heading", name="3 photos").wait_for()
    done = page.locator(".js-count[data-group='done']")
    page.wait_for_function(
        "() => document.querySelector(\".js-count[data-group='done']\").textContent === '3'",
        timeout=90_000,
    )
    assert done.inner_text() == "3"
    assert {
        group: page.locator(f".js-count[data-group='{group}']").inner_text()
        for group in ("waiting", "in_progress", "failed", "canceled")
    } == {"waiting": "0", "in_progress": "0", "failed": "0", "canceled": "0"}
    assert page.locator("#batch").get_attribute("data-final") == "1"  # refreshing stopped
    assert set(Task.objects.values_list("state", flat=True)) == {State.COMPLETED}
    for name, _kind, _data in good:
        page.get_by_role("link", name=name).wait_for()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-thumb')].every(i => i.complete)"
    )
    screenshot(page, "batch")


def test_without_javascript_the_form_uploads_the_good_photos_and_names_the_bad(
    browser, live_server, alice, tmp_path
):
    context = browser.new_context(java_script_enabled=False)
    try:
        page = context.new_page()
        good, bad = tmp_path / "good.png", tmp_path / "notes.jpg"
        good.write_bytes(photo_bytes(64, 48))
        bad.write_text("not a photo")
        _sign_in(page, live_server, alice)
        page.get_by_label("Photos").set_input_files([str(good), str(bad)])
        page.get_by_role("button", name="Upload and restore").click()
        page.get_by_role("heading", name="1 photo").wait_for()
        assert page.get_by_text("1 photo uploaded.").is_visible()
        assert page.get_by_text(
            "Not uploaded: notes.jpg: This file is not a photo we can read."
        ).is_visible()
        assert page.get_by_role("link", name="good.png").is_visible()
        assert list(Task.objects.values_list("upload__original_name", flat=True)) == ["good.png"]
    finally:
        context.close()


def test_photos_chosen_before_the_script_ran_are_taken_in(page, live_server, alice, tmp_path):
    good = tmp_path / "early.png"
    good.write_bytes(photo_bytes(200, 150, fmt="PNG", seed=3))
    sign_in(page, live_server, alice)
    page.route("**/js/upload.js", lambda route: route.abort())  # a page still loading
    page.goto(f"{live_server.url}/tasks/new/")
    page.get_by_label("Photos").set_input_files(str(good))
    page.unroute("**/js/upload.js")
    page.add_script_tag(url=f"{live_server.url}/static/js/upload.js")
    expect(_row(page, "early.png").locator(".file-state")).to_have_text("Ready")
    assert page.get_by_text("Total for 1 photo").is_visible()


def test_a_photo_stopped_while_it_is_sent_leaves_nothing_and_the_others_go_on(
    page, live_server, alice, tmp_path
):
    large = tmp_path / "large.png"
    large.write_bytes(photo_bytes(1000, 800, fmt="PNG", seed=5))  # about 2.4 MB of noise
    small = tmp_path / "small.png"
    small.write_bytes(photo_bytes(200, 150, fmt="PNG", seed=6))
    _sign_in(page, live_server, alice)
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send(  # 200 KB/s up: the large photo takes seconds to send
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 200_000},
    )
    page.get_by_label("Photos").set_input_files([str(large), str(small)])
    page.get_by_role("button", name="Upload and restore").click()
    page.get_by_role("button", name="Cancel the upload of large.png").click()
    expect(_row(page, "large.png").locator(".file-state")).to_have_text("Canceled")
    expect(
        _row(page, "small.png").get_by_role("link", name="Uploaded: see its restoration")
    ).to_be_visible()
    expect(page.get_by_text("1 photo uploaded, 1 not")).to_be_visible()
    assert list(Task.objects.values_list("upload__original_name", flat=True)) == ["small.png"]


def test_a_photo_the_server_could_not_take_is_sent_again_into_the_same_upload(
    page, live_server, alice, tmp_path
):
    first, second = tmp_path / "first.png", tmp_path / "second.png"
    first.write_bytes(photo_bytes(200, 150, fmt="PNG", seed=7))
    second.write_bytes(photo_bytes(200, 150, fmt="PNG", seed=8))
    _sign_in(page, live_server, alice)
    refused = []

    def busy_once(route):
        if b'filename="second.png"' in route.request.post_data_buffer and not refused:
            refused.append(route.request.url)
            route.fulfill(status=503, body="busy")
        else:
            route.continue_()

    page.route("**/tasks/new/photo/", busy_once)
    page.get_by_label("Photos").set_input_files([str(first), str(second)])
    page.get_by_role("button", name="Upload and restore").click()
    row = _row(page, "second.png")
    expect(row.locator(".file-message")).to_have_text(
        "The server could not take this photo (error 503)."
    )
    expect(page.get_by_text("1 photo uploaded, 1 not")).to_be_visible()
    page.get_by_role("button", name="Upload again: second.png").click()
    expect(row.get_by_role("link", name="Uploaded: see its restoration")).to_be_visible()
    expect(page.get_by_text("2 photos uploaded.")).to_be_visible()
    assert refused and Batch.objects.count() == 1  # the same upload, one batch
    assert sorted(Task.objects.values_list("upload__original_name", flat=True)) == [
        "first.png",
        "second.png",
    ]


def test_the_batch_page_counts_and_failures_follow_the_photos_without_a_reload(
    page, live_server, alice
):
    team = alice.personal_team()
    batch = Batch.objects.create(team=team, created_by=alice, operation="scale")
    working = listed_tasks(team, alice, 3, name="photo{n}.png", batch=batch, state=State.PROCESSING)
    asked = []
    page.on("request", lambda request: asked.append(request) if "/live/" in request.url else None)
    _sign_in(page, live_server, alice)
    page.goto(f"{live_server.url}/tasks/batches/{batch.public_id}/")
    assert _count(page, "in_progress") == "3"
    expect(page.locator(".js-batch-outlook")).to_contain_text("All photos done")
    download_all = page.get_by_role("link", name="Download all")
    assert download_all.is_hidden()  # nothing to download yet
    page.evaluate("() => { window.notReloaded = true; }")

    first, second, third = working
    services.fail(first, State.SERVICE_ERROR)
    services.fail(second, State.SERVICE_ERROR)
    page.get_by_text("2 photos: " + describe(State.SERVICE_ERROR).reason).wait_for()
    assert page.get_by_role("button", name="Retry these 2").is_visible()
    assert _count(page, "failed") == "2" and _count(page, "in_progress") == "1"
    # The rows and the summary are read by separate queries: a row may catch up a refresh later.
    expect(_row(page, "photo0.png").get_by_text("Service error")).to_be_visible()

    Task.objects.filter(pk=third.pk).update(state=State.COMPLETED, progress=100)
    page.wait_for_function("() => document.querySelector('#batch').dataset.final === '1'")
    assert _count(page, "done") == "1" and _count(page, "in_progress") == "0"
    expect(download_all).to_be_visible()  # the first result, without a reload
    expect(page.locator(".js-batch-outlook")).to_have_text("")
    assert page.evaluate("() => window.notReloaded") is True
    seen = len(asked)
    page.wait_for_timeout(5000)  # two and a half refresh periods
    assert len(asked) == seen  # nothing in flight: no more refreshes


def _count(page, group) -> str:
    return page.locator(f".js-count[data-group='{group}']").inner_text()


def test_a_folders_photos_are_checked_and_priced_again_when_the_restoration_changes(
    page, live_server, alice, tmp_path
):
    folder = tmp_path / "Album"
    folder.mkdir()
    (folder / "beach.webp").write_bytes(photo_bytes(300, 200, fmt="WEBP", seed=1))
    (folder / "wide.png").write_bytes(photo_bytes(2100, 40, fmt="PNG", seed=2))
    (folder / "notes.txt").write_text("not a photo")
    _sign_in(page, live_server, alice)
    page.get_by_label("Or a folder").set_input_files(str(folder))

    beach, wide, notes = (
        _row(page, f"Album/{name}") for name in ("beach.webp", "wide.png", "notes.txt")
    )
    beach.get_by_text("WebP files are not accepted by Old-photo repair.").wait_for()
    wide.get_by_text(
        "The photo is 2100 × 40 pixels; Old-photo repair accepts up to 2048"
    ).wait_for()
    assert "This file is not a photo we can read." in notes.locator(".file-message").inner_text()
    total = page.locator("#selection-total")
    assert total.inner_text() == ""

    page.get_by_label("Restoration").select_option(label="Enhance")
    beach.get_by_text("Ready").wait_for()
    wide.get_by_text("Ready").wait_for()
    enhance = SPECS["scale"]
    prices = [enhance.credits_per_photo({}, 300, 200), enhance.credits_per_photo({}, 2100, 40)]
    assert prices == [2, 3]
    shown = [row.locator(".file-credits").inner_text() for row in (beach, wide, notes)]
    assert shown == ["2", "3", "–"]
    assert total.inner_text().startswith("Total for 2 photos: 5 credits.")

    page.get_by_label("Restoration").select_option(label="Upscale (Ultra HD)")
    upscale = page.locator("fieldset[data-operation='scale-pro']")
    upscale.get_by_label("Quality").select_option(label="HD")
    assert total.inner_text().startswith(f"Total for 2 photos: {2 * 4} credits.")


@pytest.mark.parametrize("width", [PHONE_WIDTH, 1280], ids=["phone", "desktop"])
def test_the_upload_page_with_its_photos_fits_the_screen_and_axe_finds_nothing_serious(
    new_page, live_server, alice, width
):
    page = new_page(width=width, height=844)
    _sign_in(page, live_server, alice)
    whole = photo_bytes(400, 300, fmt="JPEG", seed=5)
    files = [
        ("Grandparents' wedding, summer 1962, scan at 1200 dpi.jpg", "image/jpeg", whole),
        ("Corrupt.jpg", "image/jpeg", whole[: len(whole) // 3]),
    ]
    encoded = [(name, kind, base64.b64encode(data).decode()) for name, kind, data in files]
    transfer = page.evaluate_handle(DROP, [encoded, OLD_PHOTO.max_bytes + MB])
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})
    page.get_by_role("button", name="Upload and restore").click()
    page.get_by_text("1 photo uploaded, 2 not (the reason is next to each).").wait_for()

    assert no_horizontal_scroll(page), f"wider than {width} px: {too_wide(page)}"
    violations = axe_violations(page)
    assert violations == [], describe_violations(violations)
    if width == PHONE_WIDTH:
        screenshot(page, f"upload-{PHONE_WIDTH}")
