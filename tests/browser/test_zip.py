"""Downloading ticked rows as one ZIP, as a person does it: real Chromium, a live server."""

import csv
import io
import zipfile

import pytest

from restorations.jobs import services
from restorations.jobs.states import State
from tests.factories import finished_task, photo_bytes, stored_task

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_tick_two_done_rows_and_download_them_as_a_zip(page, live_server, studio, alice, tmp_path):
    results = {
        name: finished_task(studio, alice, f"{name}.png", result=photo_bytes(fmt="JPEG", seed=n))
        for n, name in enumerate(("Grandad 1961", "Wedding"))
    }
    finished_task(studio, alice, "Not ticked.png")
    services.fail(stored_task(studio, alice, "Scan.png"), State.INVALID_IMAGE)

    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Team").select_option(label="Studio")
    page.get_by_role("button", name="Switch").click()
    page.get_by_label("Select Grandad 1961.png").check()
    page.get_by_label("Select Wedding.png").check()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download as ZIP").click()
    download = download_info.value
    assert download.suggested_filename.startswith("restored-photos-")
    assert download.suggested_filename.endswith(".zip")
    saved = tmp_path / "photos.zip"
    download.save_as(saved)

    with zipfile.ZipFile(saved) as zip_file:
        assert zip_file.namelist() == [
            "Grandad 1961-restored.jpg",
            "Wedding-restored.jpg",
            "manifest.csv",
        ]
        for name, task in results.items():
            with task.result.open("rb") as stored:
                assert zip_file.read(f"{name}-restored.jpg") == stored.read()
        manifest = zip_file.read("manifest.csv").decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(manifest)))
    assert [(r["file_name"], r["original_name"], r["state"]) for r in rows] == [
        ("Grandad 1961-restored.jpg", "Grandad 1961.png", "Completed"),
        ("Wedding-restored.jpg", "Wedding.png", "Completed"),
    ]
    assert [r["result_sha256"] for r in rows] == [t.result_sha256 for t in results.values()]
    assert page.get_by_role("heading", name="Studio").is_visible()  # still on the list
