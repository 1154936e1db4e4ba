"""A photo from the upload form to a downloadable result, through a real Celery worker.

The worker runs in this process (celery.contrib.testing) but talks to the broker named by
CELERY_BROKER_URL: Redis in CI, as in production. The database is real too (PostgreSQL when
DATABASE_URL is set), and the test commits its rows so the worker sees them.
"""

import pytest
from django.urls import reverse
from PIL import Image

from restorations.jobs.models import Task
from restorations.jobs.states import State
from tests.factories import login_in_team, photo_upload, wait_until_final

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_uploaded_photo_reaches_a_downloadable_result(
    celery_worker_thread, client, studio, alice, tmp_path
):
    login_in_team(client, alice, studio)
    response = client.post(
        reverse("jobs:task_create"),
        {"photos": [photo_upload("wedding.png")], "operation": "restoration-old-photo"},
    )
    assert response.status_code == 302
    task = wait_until_final(Task.objects.get())
    assert task.state == State.COMPLETED, task.failure_message
    live = client.get(reverse("jobs:task_live"), {"ids": str(task.public_id)}).json()
    assert [status["final"] for status in live["tasks"]] == [True]

    download = client.get(reverse("jobs:download_result", args=[task.public_id]))
    assert download.status_code == 200
    saved = tmp_path / "result.png"
    saved.write_bytes(b"".join(download.streaming_content))
    with Image.open(saved) as image:
        assert image.size == (task.result_width, task.result_height)
    assert task.events.filter(kind="result_saved").count() == 1
