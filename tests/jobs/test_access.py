"""Every task URL: members work, viewers read but cannot change, outsiders get 404."""

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse

from restorations.jobs import services
from restorations.jobs.models import Task
from restorations.jobs.states import State
from tests.factories import login_in_team, photo_bytes, stored_task

pytestmark = pytest.mark.django_db

READ_URLS = ["jobs:task_detail", "jobs:download_original", "jobs:thumbnail"]
WRITE_URLS = ["jobs:task_cancel", "jobs:task_retry"]


@pytest.fixture
def task(studio, alice):
    return stored_task(studio, alice, "family.png", operation="restoration-old-photo")


@pytest.fixture
def finished(task):
    task.result.save("result.png", ContentFile(photo_bytes(seed=9)), save=False)
    Task.objects.filter(pk=task.pk).update(
        state=State.COMPLETED, result=task.result.name, progress=100
    )
    task.refresh_from_db()
    return task


@pytest.mark.parametrize("name", READ_URLS)
@pytest.mark.parametrize("who", ["alice", "bob", "victor"])
def test_team_members_and_viewers_can_read(client, request, task, name, who):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse(name, args=[task.public_id])).status_code == 200


@pytest.mark.parametrize("name", READ_URLS + WRITE_URLS + ["jobs:download_result"])
def test_outsiders_get_404(client, charlie, finished, name):
    client.force_login(charlie)
    method = client.post if name in WRITE_URLS else client.get
    assert method(reverse(name, args=[finished.public_id])).status_code == 404


@pytest.mark.parametrize("name", READ_URLS)
def test_anonymous_users_are_sent_to_sign_in(client, task, name):
    response = client.get(reverse(name, args=[task.public_id]))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", WRITE_URLS)
def test_viewers_cannot_change_tasks(client, victor, task, name):
    client.force_login(victor)
    assert client.post(reverse(name, args=[task.public_id])).status_code == 403
    task.refresh_from_db()
    assert task.state == State.QUEUED and not task.retries.exists()


@pytest.mark.parametrize("name", WRITE_URLS)
def test_changes_need_post(client, alice, task, name):
    client.force_login(alice)
    assert client.get(reverse(name, args=[task.public_id])).status_code == 405


@pytest.mark.parametrize("name", READ_URLS)
def test_reads_refuse_post(client, alice, task, name):
    client.force_login(alice)
    assert client.post(reverse(name, args=[task.public_id])).status_code == 405


def test_member_cancels_and_the_timeline_says_who(client, bob, task):
    client.force_login(bob)
    response = client.post(reverse("jobs:task_cancel", args=[task.public_id]))
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.state == State.CANCELED and task.finished_at is not None
    event = task.events.get(kind="canceled")
    assert (event.actor, event.from_state, event.to_state) == (
        bob,
        State.QUEUED,
        State.CANCELED,
    )


def test_retry_of_a_canceled_task_is_a_new_linked_task(client, alice, task):
    services.cancel(task, alice)
    client.force_login(alice)
    response = client.post(reverse("jobs:task_retry", args=[task.public_id]))
    new = task.retries.get()
    assert response["Location"] == reverse("jobs:task_detail", args=[new.public_id])
    assert (new.upload, new.operation, new.state) == (
        task.upload,
        task.operation,
        State.QUEUED,
    )


def test_retry_is_refused_where_it_cannot_help(client, alice, task):
    services.fail(task, State.INVALID_IMAGE)
    client.force_login(alice)
    response = client.post(reverse("jobs:task_retry", args=[task.public_id]))
    assert response.status_code == 303
    assert not task.retries.exists()


def test_downloads_stream_the_stored_bytes_under_the_users_file_name(client, bob, finished):
    client.force_login(bob)
    original = client.get(reverse("jobs:download_original", args=[finished.public_id]))
    assert b"".join(original.streaming_content) == finished.upload.file.open("rb").read()
    assert 'filename="family.png"' in original["Content-Disposition"]
    result = client.get(reverse("jobs:download_result", args=[finished.public_id]))
    assert b"".join(result.streaming_content) == photo_bytes(seed=9)
    assert 'filename="family-restored.png"' in result["Content-Disposition"]


def test_result_download_before_there_is_a_result(client, alice, task):
    client.force_login(alice)
    response = client.get(reverse("jobs:download_result", args=[task.public_id]))
    assert response.status_code == 303


def test_task_list_shows_only_the_current_teams_tasks(client, alice, charlie, task):
    login_in_team(client, alice, task.team)
    assert "family.png" in client.get(reverse("jobs:task_list")).content.decode()
    client.force_login(charlie)
    assert "family.png" not in client.get(reverse("jobs:task_list")).content.decode()


def test_switching_to_a_team_you_are_not_in_is_404(client, charlie, studio):
    client.force_login(charlie)
    response = client.post(reverse("team_switch"), {"team": str(studio.public_id)})
    assert response.status_code == 404


def test_live_json_carries_the_state_tables_words(client, alice, task):
    services.fail(task, State.CONTENT_UNSUITABLE)
    client.force_login(alice)
    (status,) = client.get(reverse("jobs:task_live"), {"ids": str(task.public_id)}).json()["tasks"]
    assert status["state"] == -14 and status["final"] is True
    assert status["category"] == "input"
    assert "does not suit this operation" in status["reason"]
