"""The live endpoint (one request for every row in flight) and the list's bulk actions: exactly
the ticked ids, through the one access check."""

import pytest
from django.urls import reverse

from restorations.jobs import services
from restorations.jobs.models import Task, Upload
from restorations.jobs.states import State
from tests.factories import listed_tasks, login_in_team, stored_task

pytestmark = pytest.mark.django_db


def _live(client, tasks):
    return client.get(reverse("jobs:task_live"), {"ids": ",".join(str(t.public_id) for t in tasks)})


def _bulk(client, action, tasks, *, follow=False, **extra):
    ids = [str(task.public_id) for task in tasks]
    data = {"action": action, "ids": ids, **extra}
    return client.post(reverse("jobs:task_bulk"), data, follow=follow)


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_live_answers_for_every_visible_task_with_its_fields(client, studio, alice):
    working, failed = listed_tasks(studio, alice, 2, state=State.PROCESSING, progress=30)
    services.fail(failed, State.INVALID_IMAGE)
    login_in_team(client, alice, studio)
    answer = {status["id"]: status for status in _live(client, [working, failed]).json()["tasks"]}
    assert answer[str(working.public_id)]["done_at"]  # the outlook: tests/jobs/test_estimates.py
    assert answer[str(working.public_id)] | {"checked_seconds_ago": 0, "done_at": "…"} == {
        "id": str(working.public_id),
        "state": State.PROCESSING,
        "label": "Processing",
        "category": "in_progress",
        "group": "in_progress",
        "progress": 30,
        "final": False,
        "reason": working.state_info.reason,
        "advice": working.state_info.advice,
        "result_url": None,
        "thumbnail_url": "/static/img/placeholder.svg",
        "result_thumbnail_url": None,
        "checked_seconds_ago": 0,
        "ahead": None,
        "done_at": "…",
        "outlook": "done any moment now",  # 30 % reported as soon as it started
    }
    gone = answer[str(failed.public_id)]
    assert (gone["final"], gone["group"], gone["category"]) == (True, "failed", "input")
    assert (gone["ahead"], gone["done_at"], gone["outlook"]) == (None, None, "")
    assert gone["reason"] == failed.state_info.reason and gone["advice"]


def test_live_leaves_out_tasks_the_user_may_not_see(client, studio, alice, charlie):
    (theirs,) = listed_tasks(studio, alice, 1)
    (own,) = listed_tasks(charlie.personal_team(), charlie, 1)
    client.force_login(charlie)
    answer = _live(client, [theirs, own])
    assert answer.status_code == 200
    assert [status["id"] for status in answer.json()["tasks"]] == [str(own.public_id)]


def test_live_refuses_more_than_100_ids(client, studio, alice):
    tasks = listed_tasks(studio, alice, 101)
    login_in_team(client, alice, studio)
    assert _live(client, tasks[:100]).status_code == 200
    answer = _live(client, tasks)
    assert answer.status_code == 400
    assert answer.json()["error"] == "Ask for at most 100 tasks at once; this asked for 101."


def test_live_refuses_ids_that_are_not_task_ids(client, alice):
    client.force_login(alice)
    answer = client.get(reverse("jobs:task_live"), {"ids": "1,2"})
    assert answer.status_code == 400 and "task ids" in answer.json()["error"]


def test_bulk_asks_first_with_the_count_and_changes_nothing(client, studio, alice):
    tasks = listed_tasks(studio, alice, 3)
    login_in_team(client, alice, studio)
    response = _bulk(client, "cancel", tasks)
    assert response.status_code == 200
    assert "Cancel 3 photos?" in response.content.decode()
    assert set(Task.objects.values_list("state", flat=True)) == {State.QUEUED}


def test_bulk_cancel_applies_to_exactly_the_selected_ids(client, studio, alice):
    chosen_a, left, chosen_b, done = listed_tasks(studio, alice, 4)
    services.cancel(done, alice)
    login_in_team(client, alice, studio)
    response = _bulk(client, "cancel", [chosen_a, chosen_b, done], confirm="yes", follow=True)
    states = dict(Task.objects.values_list("pk", "state"))
    assert states == {
        chosen_a.pk: State.CANCELED,
        left.pk: State.QUEUED,
        chosen_b.pk: State.CANCELED,
        done.pk: State.CANCELED,
    }
    assert _messages(response) == ["2 canceled, 1 had already finished."]


def test_bulk_retry_sends_again_what_a_retry_can_help(client, studio, alice):
    helped, not_helped, working = listed_tasks(studio, alice, 3)
    services.fail(helped, State.SERVICE_ERROR)
    services.fail(not_helped, State.INVALID_IMAGE)
    login_in_team(client, alice, studio)
    response = _bulk(client, "retry", [helped, not_helped, working], confirm="yes", follow=True)
    assert list(Task.objects.filter(retry_of__isnull=False).values_list("retry_of", flat=True)) == [
        helped.pk
    ]
    assert _messages(response) == ["1 sent again, 2 could not be retried."]


def test_bulk_delete_removes_final_tasks_files_and_refuses_in_flight_ones(
    client, studio, alice, media_root, django_capture_on_commit_callbacks
):
    final, working = (stored_task(studio, alice, name) for name in ("final.png", "working.png"))
    services.cancel(final, alice)
    kept = {working.upload.file.path, working.upload.thumbnail.path}
    login_in_team(client, alice, studio)
    with django_capture_on_commit_callbacks(execute=True):
        response = _bulk(client, "delete", [final, working], confirm="yes", follow=True)
    assert list(Task.objects.values_list("pk", flat=True)) == [working.pk]
    assert list(Upload.objects.values_list("pk", flat=True)) == [working.upload.pk]
    assert {str(path) for path in media_root.rglob("*") if path.is_file()} == kept
    assert _messages(response) == ["1 deleted, 1 still in progress (cancel it first)."]


@pytest.mark.parametrize("confirm", ["", "yes"])
def test_viewers_cannot_use_bulk_actions(client, studio, alice, victor, confirm):
    tasks = listed_tasks(studio, alice, 2)
    login_in_team(client, victor, studio)
    assert _bulk(client, "cancel", tasks, confirm=confirm).status_code == 403
    assert set(Task.objects.values_list("state", flat=True)) == {State.QUEUED}


def test_outsiders_ids_are_ignored(client, studio, alice, charlie):
    (theirs,) = listed_tasks(studio, alice, 1)
    (own,) = listed_tasks(charlie.personal_team(), charlie, 1)
    client.force_login(charlie)
    confirm = _bulk(client, "cancel", [theirs, own])
    assert "Cancel 1 photo?" in confirm.content.decode()
    response = _bulk(client, "cancel", [theirs, own], confirm="yes", follow=True)
    assert Task.objects.get(pk=theirs.pk).state == State.QUEUED
    assert Task.objects.get(pk=own.pk).state == State.CANCELED
    assert _messages(response) == ["1 canceled."]


def test_only_outsiders_ids_read_like_no_selection(client, studio, alice, charlie):
    (theirs,) = listed_tasks(studio, alice, 1)
    client.force_login(charlie)
    response = _bulk(client, "delete", [theirs], confirm="yes", follow=True)
    assert _messages(response) == ["No photos were selected."]
    assert Task.objects.filter(pk=theirs.pk).exists()


def test_bulk_goes_back_to_the_filtered_list_but_never_off_site(client, studio, alice):
    tasks = listed_tasks(studio, alice, 1)
    login_in_team(client, alice, studio)
    back = reverse("jobs:task_list") + "?group=waiting"
    assert _bulk(client, "cancel", tasks, confirm="yes", next=back)["Location"] == back
    away = _bulk(client, "cancel", tasks, confirm="yes", next="https://evil.example/")
    assert away["Location"] == reverse("jobs:task_list")


def test_the_list_offers_changes_to_writers_and_the_zip_to_everyone(client, studio, alice, victor):
    listed_tasks(studio, alice, 1)
    login_in_team(client, alice, studio)
    page = client.get(reverse("jobs:task_list")).content.decode()
    assert 'name="ids"' in page and 'value="cancel"' in page and "Download as ZIP" in page
    login_in_team(client, victor, studio)
    page = client.get(reverse("jobs:task_list")).content.decode()
    assert 'name="ids"' in page and "Download as ZIP" in page
    assert 'name="action"' not in page
