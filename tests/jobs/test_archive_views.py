"""The two ZIP downloads, a batch's and the ticked rows', behind the one access check."""

import io
import zipfile

import pytest
from django.urls import reverse
from django.utils import timezone

from restorations.jobs import services
from restorations.jobs.models import Batch
from restorations.jobs.states import State
from tests.factories import finished_task, login_in_team, stored_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(studio, alice):
    batch = Batch.objects.create(team=studio, created_by=alice, operation="scale")
    finished_task(studio, alice, "a.png", batch=batch)
    return batch


def _batch_url(batch) -> str:
    return reverse("jobs:batch_download", args=[batch.public_id])


def _entries(response) -> list[str]:
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()


def _select(client, tasks, **extra):
    ids = [str(task.public_id) for task in tasks]
    return client.post(reverse("jobs:selection_download"), {"ids": ids, **extra})


def _messages(client, response) -> list[str]:
    return [str(m) for m in client.get(response["Location"]).context["messages"]]


@pytest.mark.parametrize("member", ["alice", "bob", "victor"])
def test_every_member_of_the_team_downloads_the_batch(client, request, studio, batch, member):
    login_in_team(client, request.getfixturevalue(member), studio)
    response = client.get(_batch_url(batch))
    assert _entries(response) == ["a-restored.jpg", "manifest.csv"]
    when = timezone.localtime(batch.created_at).strftime("%Y-%m-%d-%H%M")
    assert response["Content-Disposition"] == f'attachment; filename="restored-studio-{when}.zip"'
    assert "no-store" in response["Cache-Control"]


def test_outsiders_get_404_for_a_batch(client, batch, charlie):
    client.force_login(charlie)
    assert client.get(_batch_url(batch)).status_code == 404


def test_a_batch_download_needs_a_login_and_a_get(client, studio, alice, batch):
    assert client.get(_batch_url(batch))["Location"].startswith(reverse("login"))
    login_in_team(client, alice, studio)
    assert client.post(_batch_url(batch)).status_code == 405


def test_a_batch_without_results_says_so_instead_of_an_empty_zip(client, studio, alice):
    batch = Batch.objects.create(team=studio, created_by=alice, operation="scale")
    services.fail(stored_task(studio, alice, batch=batch), State.INVALID_IMAGE)
    login_in_team(client, alice, studio)
    response = client.get(_batch_url(batch))
    assert response.status_code == 303
    assert response["Location"] == reverse("jobs:task_list") + f"?batch={batch.public_id}"
    assert _messages(client, response) == ["No photo of this batch has a result to download yet."]


def test_the_selection_holds_exactly_the_ticked_tasks_the_user_may_see(
    client, studio, alice, charlie
):
    ticked = [finished_task(studio, alice, f"{name}.png") for name in ("a", "b")]
    finished_task(studio, alice, "not-ticked.png")
    theirs = finished_task(charlie.personal_team(), charlie, "theirs.png")
    login_in_team(client, alice, studio)
    response = _select(client, [*ticked, theirs])
    assert _entries(response) == ["a-restored.jpg", "b-restored.jpg", "manifest.csv"]
    assert response["Content-Disposition"].startswith('attachment; filename="restored-photos-')


def test_ids_that_are_not_task_ids_are_left_out(client, studio, alice):
    task = finished_task(studio, alice, "a.png")
    login_in_team(client, alice, studio)
    response = client.post(
        reverse("jobs:selection_download"), {"ids": ["1", "not-an-id", str(task.public_id)]}
    )
    assert _entries(response) == ["a-restored.jpg", "manifest.csv"]


def test_only_other_teams_ids_read_like_no_selection(client, studio, alice, charlie):
    theirs = finished_task(studio, alice, "theirs.png")
    client.force_login(charlie)
    response = _select(client, [theirs], next=reverse("jobs:task_list") + "?group=failed")
    assert response.status_code == 303
    assert response["Location"] == reverse("jobs:task_list") + "?group=failed"
    assert _messages(client, response) == ["No photos were selected."]


def test_a_selection_without_results_says_so(client, studio, alice):
    working = [stored_task(studio, alice, f"{n}.png") for n in range(2)]
    login_in_team(client, alice, studio)
    response = _select(client, working)
    assert response.status_code == 303 and response["Location"] == reverse("jobs:task_list")
    assert _messages(client, response) == [
        "None of the 2 selected photos has a result to download yet."
    ]


def test_viewers_download_a_selection_too(client, studio, alice, victor):
    task = finished_task(studio, alice, "a.png")
    login_in_team(client, victor, studio)
    page = client.get(reverse("jobs:task_list")).content.decode()
    assert "Download as ZIP" in page and 'value="retry"' not in page
    assert f'name="ids" value="{task.public_id}"' in page
    assert _entries(_select(client, [task])) == ["a-restored.jpg", "manifest.csv"]


def test_a_selection_download_needs_a_login_and_a_post(client, studio, alice):
    task = finished_task(studio, alice, "a.png")
    assert _select(client, [task])["Location"].startswith(reverse("login"))
    login_in_team(client, alice, studio)
    assert client.get(reverse("jobs:selection_download")).status_code == 405


def test_the_batch_filter_offers_the_batch_zip(client, studio, alice, batch):
    login_in_team(client, alice, studio)
    page = client.get(reverse("jobs:task_list"), {"batch": batch.public_id}).content.decode()
    assert f'href="{_batch_url(batch)}"' in page
