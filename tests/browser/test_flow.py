"""The product as a person uses it: real Chromium against a live server and a real worker."""

import time

import pytest
from PIL import Image

from restorations.jobs import services
from restorations.jobs.models import Batch, Task
from restorations.jobs.states import State
from tests.factories import listed_tasks, photo_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_sign_up_upload_watch_progress_and_download(
    page, live_server, celery_worker_thread, tmp_path
):
    photo = tmp_path / "Grandad 1961.jpg"
    photo.write_bytes(photo_bytes(320, 240, fmt="JPEG", seed=4))

    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Username").fill("dora")
    page.locator("#id_password1").fill("a-long pass phrase")
    page.locator("#id_password2").fill("a-long pass phrase")
    page.get_by_role("button", name="Create account").click()
    page.get_by_role("link", name="Upload your first photo").click()
    page.wait_for_url("**/tasks/new/")  # loaded, its script running: photos go one by one

    page.get_by_label("Photos").set_input_files(str(photo))
    page.get_by_label("Restoration").select_option(label="Old-photo repair")
    page.locator("fieldset[data-operation='restoration-old-photo']").get_by_label(
        "Damage"
    ).select_option(label="Medium")
    assert page.locator("fieldset[data-operation='scale']").is_hidden()
    page.get_by_role("button", name="Upload and restore").click()
    page.get_by_role("link", name="Uploaded: see its restoration").click()

    page.get_by_role("heading", name="Grandad 1961.jpg").wait_for()
    page.locator(".state-success", has_text="Completed").wait_for(timeout=60_000)
    assert "Your photo has been restored." in page.locator(".reason").inner_text()
    task = Task.objects.get()
    assert task.state == State.COMPLETED and task.options["restoration_type"] == "1"

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download result").click()
    download = download_info.value
    assert download.suggested_filename == "Grandad 1961-restored.jpg"
    saved = tmp_path / "result.jpg"
    download.save_as(saved)
    with Image.open(saved) as image:
        assert image.size == (task.result_width, task.result_height)
    page.screenshot(path=str(tmp_path / "task.png"), full_page=True)


def sign_in(page, live_server, username, password="correct horse battery"):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_bad_file_shows_the_reason_next_to_its_name(page, live_server, alice, tmp_path):
    sign_in(page, live_server, "alice")
    page.get_by_role("link", name="Upload").first.click()
    page.wait_for_url("**/tasks/new/")
    fake = tmp_path / "notes.jpg"
    fake.write_text("not a photo")
    page.get_by_label("Photos").set_input_files(str(fake))
    page.get_by_role("button", name="Upload and restore").click()
    error = page.locator("tr[data-name='notes.jpg'] .file-message")
    error.get_by_text("This file is not a photo we can read.").wait_for()
    assert Task.objects.count() == 0 and Batch.objects.count() == 0


def test_fifty_rows_in_flight_make_one_live_request_per_refresh_and_none_once_final(
    page, live_server, alice
):
    team = alice.personal_team()
    tasks = listed_tasks(team, alice, 50, state=State.PROCESSING, progress=10)
    live_requests = []
    page.on(
        "request",
        lambda request: (
            "/live/?ids=" in request.url and live_requests.append((time.monotonic(), request.url))
        ),
    )
    sign_in(page, live_server, "alice")
    page.goto(f"{live_server.url}/tasks/")
    assert page.locator("[data-task-id][data-final='0']").count() == 50

    start = time.monotonic()
    page.wait_for_timeout(7000)
    watched = time.monotonic() - start
    # One request as the page loads, then one per 2 s refresh for the whole page, each asking
    # for all 50 rows.
    during = [at for at, _ in live_requests if at >= start]
    assert live_requests[0][0] < start
    assert 2 <= len(during) <= watched / 2 + 1
    assert all(
        url.split("ids=")[1].count("%2C") + url.split("ids=")[1].count(",") == 49
        for _, url in live_requests
    )

    for task in tasks:
        services.cancel(task, alice)
    page.wait_for_function("!document.querySelector(\"[data-task-id][data-final='0']\")")
    settled = len(live_requests)
    page.wait_for_timeout(6000)
    assert len(live_requests) == settled  # nothing in flight: no more requests
