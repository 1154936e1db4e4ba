"""A batch in real Chromium with the real worker: retry its failed photo from the batch page,
watch it finish without a reload, then download the whole batch as a ZIP and read its manifest."""

import csv
import io
import zipfile

import pytest
from django.db import transaction

from restorations.jobs import services, transitions
from restorations.jobs.models import Batch, Task
from restorations.jobs.states import State
from tests.browser.support import screenshot, sign_in
from tests.factories import finished_task, stored_task

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_retry_a_failed_photo_then_download_the_batch_zip(
    page, live_server, alice, celery_worker_thread, tmp_path
):
    team = alice.personal_team()
    batch = Batch.objects.create(team=team, created_by=alice, operation="scale")
    done = [finished_task(team, alice, f"done{n}.png", batch=batch, seed=n) for n in range(2)]
    with transaction.atomic():  # failed before its run's message leaves, so the worker skips it
        failed = stored_task(team, alice, "failed.png", batch=batch)
        transitions.move(failed, State.PROCESSING, expect=State.QUEUED)
        services.fail(failed, State.SERVICE_ERROR)

    sign_in(page, live_server, alice)
    page.goto(f"{live_server.url}/tasks/batches/{batch.public_id}/")
    page.get_by_role("button", name="Retry this photo").click()
    page.get_by_role("button", name="Retry 1 photo").click()

    # Back on the batch page: the new attempt runs on the worker and the page follows it.
    page.wait_for_function("() => document.querySelector('#batch').dataset.final === '1'")
    retry = Task.objects.get(retry_of=failed)
    assert retry.state == State.COMPLETED
    assert page.locator(".js-count[data-group='done']").inner_text() == "3"
    assert page.locator(".js-count[data-group='failed']").inner_text() == "0"
    screenshot(page, "batch-retried")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download all").click()
    saved = tmp_path / "batch.zip"
    download_info.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        names = archive.namelist()
        rows = list(csv.DictReader(io.StringIO(archive.read("manifest.csv").decode("utf-8-sig"))))
        assert archive.read(retry.result_download_name()) == retry.result.open("rb").read()
        assert archive.read("done0-restored.jpg") == done[0].result.open("rb").read()
    assert sorted(names) == sorted(
        ["done0-restored.jpg", "done1-restored.jpg", retry.result_download_name(), "manifest.csv"]
    )
    by_name = {row["original_name"]: row for row in rows}
    assert by_name["failed.png"]["attempts"] == "2"
    assert by_name["failed.png"]["state"] == "Completed"
    assert {row["attempts"] for name, row in by_name.items() if name != "failed.png"} == {"1"}
