"""A batch's page: each photo counted once by its latest attempt in the five state groups, its
failures grouped by reason with retries of exactly the retriable ids, its photos, and its live
counts on the one live endpoint."""

import re
import time
from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from restorations.jobs import estimates, services
from restorations.jobs.estimates import Outlook
from restorations.jobs.models import Batch, Engine, Task
from restorations.jobs.states import State, describe
from tests.factories import listed_tasks, login_in_team, stored_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(studio, alice):
    return Batch.objects.create(team=studio, created_by=alice, operation="scale")


def _photos(batch, user, count, state, name):
    return listed_tasks(batch.team, user, count, name=name + "{n}.png", batch=batch, state=state)


@pytest.fixture
def mixed(batch, alice):
    """One waiting, two in progress, three done, five failed (three a retry can help, two it
    cannot), one canceled: twelve photos."""
    return {
        "waiting": _photos(batch, alice, 1, State.WAITING_TO_SEND, "waiting"),
        "in_progress": _photos(batch, alice, 2, State.PROCESSING, "working"),
        "done": _photos(batch, alice, 3, State.COMPLETED, "done"),
        "busy": _photos(batch, alice, 3, State.SERVICE_ERROR, "busy"),
        "unreadable": _photos(batch, alice, 2, State.INVALID_IMAGE, "unreadable"),
        "canceled": _photos(batch, alice, 1, State.CANCELED, "canceled"),
    }


def _page(client, batch):
    return client.get(reverse("jobs:batch_detail", args=[batch.public_id]))


def _retry_forms(html: str) -> dict[str, list[str]]:
    """{button text: ids} of the page's retry forms."""
    forms = re.findall(r'<form method="post" action="/tasks/bulk/">(.*?)</form>', html, re.S)
    found = {}
    for form in forms:
        if 'name="action" value="retry"' in form:
            button = re.search(r"<button[^>]*>([^<]+)</button>", form).group(1)
            found[button] = re.findall(r'name="ids" value="([0-9a-f-]+)"', form)
        assert 'name="next" value="/tasks/batches/' in form
    return found


def _ids(tasks) -> list[str]:
    return [str(task.public_id) for task in tasks]


def _live(client, tasks=(), batch_id=""):
    return client.get(
        reverse("jobs:task_live"), {"ids": ",".join(_ids(tasks)), "batch": str(batch_id)}
    ).json()


def test_the_page_counts_each_photo_in_its_group(client, studio, alice, batch, mixed):
    login_in_team(client, alice, studio)
    response = _page(client, batch)
    assert response.status_code == 200
    assert response.context["outcome"].counts == {
        "waiting": 1,
        "in_progress": 2,
        "done": 3,
        "failed": 5,
        "canceled": 1,
    }
    shown = re.findall(
        r'<strong class="js-count" data-group="(\w+)">(\d+)</strong>', response.content.decode()
    )
    assert shown == [
        ("waiting", "1"),
        ("in_progress", "2"),
        ("done", "3"),
        ("failed", "5"),
        ("canceled", "1"),
    ]


def test_failures_are_grouped_by_reason_with_their_advice_largest_first(
    client, studio, alice, batch, mixed
):
    login_in_team(client, alice, studio)
    html = _page(client, batch).content.decode()
    busy, unreadable = describe(State.SERVICE_ERROR), describe(State.INVALID_IMAGE)
    groups = re.findall(r"<p><strong>(\d+ photos?):</strong> (.*?) — (.*?)</p>", html)
    assert groups == [
        ("3 photos", busy.reason, busy.advice),
        ("2 photos", unreadable.reason, unreadable.advice),
    ]


def test_retry_buttons_carry_exactly_the_retriable_ids(client, studio, alice, batch, mixed):
    login_in_team(client, alice, studio)
    forms = _retry_forms(_page(client, batch).content.decode())
    assert forms == {
        "Retry these 3": _ids(mixed["busy"]),
        "Retry all retriable (3)": _ids(mixed["busy"]),
    }  # the unreadable photos get no button: a retry cannot help them


def test_retry_all_retriable_covers_every_retriable_group(client, studio, alice, batch, mixed):
    late = _photos(batch, alice, 1, State.DEADLINE_PASSED, "late")
    login_in_team(client, alice, studio)
    forms = _retry_forms(_page(client, batch).content.decode())
    assert forms["Retry this photo"] == _ids(late)
    assert sorted(forms["Retry all retriable (4)"]) == sorted(_ids(mixed["busy"] + late))


def test_retrying_through_the_bulk_action_asks_then_retries_and_comes_back(
    client, studio, alice, batch, mixed
):
    login_in_team(client, alice, studio)
    ids = _retry_forms(_page(client, batch).content.decode())["Retry these 3"]
    next_url = reverse("jobs:batch_detail", args=[batch.public_id])
    data = {"action": "retry", "ids": ids, "next": next_url}
    confirm = client.post(reverse("jobs:task_bulk"), data)
    assert "Retry 3 photos?" in confirm.content.decode()
    assert not Task.objects.filter(retry_of__isnull=False).exists()
    response = client.post(reverse("jobs:task_bulk"), {**data, "confirm": "yes"})
    assert response["Location"] == next_url
    retried = set(Task.objects.filter(retry_of__isnull=False).values_list("retry_of", flat=True))
    assert retried == {task.pk for task in mixed["busy"]}
    # Each photo counts once, by its latest attempt: the three are waiting again.
    outcome = _page(client, batch).context["outcome"]
    assert (outcome.counts["waiting"], outcome.counts["failed"]) == (4, 2)
    assert len(outcome.photos) == 12
    assert "Retry these" not in _page(client, batch).content.decode()


def test_a_photo_that_failed_and_then_succeeded_is_done(client, studio, alice, batch):
    (photo,) = _photos(batch, alice, 1, State.SERVICE_ERROR, "p")
    retry = services.retry(photo, alice)
    Task.objects.filter(pk=retry.pk).update(state=State.COMPLETED)
    login_in_team(client, alice, studio)
    outcome = _page(client, batch).context["outcome"]
    assert outcome.counts["done"] == 1 and outcome.counts["failed"] == 0
    assert [task.pk for task in outcome.photos] == [retry.pk]
    assert outcome.failures == []


def test_the_page_lists_the_photos_with_thumbnails_links_and_the_filtered_list(
    client, studio, alice, batch
):
    task = stored_task(studio, alice, "Grandad.png", batch=batch)
    stored_task(studio, alice, "elsewhere.png")  # another batch
    login_in_team(client, alice, studio)
    html = _page(client, batch).content.decode()
    assert f'<a href="{reverse("jobs:task_detail", args=[task.public_id])}">Grandad.png</a>' in html
    assert f'src="{reverse("jobs:thumbnail", args=[task.public_id])}"' in html
    assert "elsewhere.png" not in html
    assert f'href="/tasks/?batch={batch.public_id}"' in html
    assert f'data-batch-id="{batch.public_id}" data-final="0"' in html


def test_the_page_of_a_finished_batch_does_not_ask_for_refreshes(client, studio, alice, batch):
    _photos(batch, alice, 2, State.COMPLETED, "done")
    login_in_team(client, alice, studio)
    assert 'data-final="1"' in _page(client, batch).content.decode()


def test_outsiders_get_404(client, studio, alice, charlie, batch, mixed):
    client.force_login(charlie)
    assert _page(client, batch).status_code == 404
    assert client.get(reverse("jobs:batch_detail", args=[Batch().public_id])).status_code == 404


def test_viewers_see_the_batch_but_no_retry_and_cannot_retry(client, studio, victor, batch, mixed):
    login_in_team(client, victor, studio)
    response = _page(client, batch)
    assert response.status_code == 200
    assert _retry_forms(response.content.decode()) == {}
    data = {"action": "retry", "ids": _ids(mixed["busy"]), "confirm": "yes"}
    assert client.post(reverse("jobs:task_bulk"), data).status_code == 403
    assert not Task.objects.filter(retry_of__isnull=False).exists()


def test_the_page_is_only_for_get(client, studio, alice, batch):
    login_in_team(client, alice, studio)
    url = reverse("jobs:batch_detail", args=[batch.public_id])
    assert client.post(url).status_code == 405


def test_the_live_answer_carries_the_batchs_counts_and_failures(
    client, studio, alice, batch, mixed
):
    login_in_team(client, alice, studio)
    answer = _live(client, mixed["in_progress"], batch.public_id)
    assert [status["id"] for status in answer["tasks"]] == _ids(mixed["in_progress"][::-1])
    summary = answer["batch"]
    assert summary["id"] == str(batch.public_id)
    assert summary["photos"] == 12
    assert summary["counts"] == {
        "waiting": 1,
        "in_progress": 2,
        "done": 3,
        "failed": 5,
        "canceled": 1,
    }
    assert summary["final"] is False
    assert "3 photos:</strong> " + describe(State.SERVICE_ERROR).reason in summary["failures_html"]
    assert _retry_forms(summary["failures_html"])["Retry these 3"] == _ids(mixed["busy"])
    version = summary["failures_version"]
    assert _live(client, (), batch.public_id)["batch"]["failures_version"] == version
    Task.objects.filter(pk=mixed["in_progress"][0].pk).update(state=State.INVALID_IMAGE)
    changed = _live(client, (), batch.public_id)["batch"]
    assert changed["counts"]["failed"] == 6 and changed["failures_version"] != version


def test_the_live_answer_says_when_nothing_in_the_batch_is_in_flight(client, studio, alice, batch):
    (working,) = _photos(batch, alice, 1, State.PROCESSING, "w")
    login_in_team(client, alice, studio)
    assert _live(client, (), batch.public_id)["batch"]["final"] is False
    Task.objects.filter(pk=working.pk).update(state=State.COMPLETED)
    assert _live(client, (), batch.public_id)["batch"]["final"] is True


@pytest.mark.parametrize("batch_id", ["theirs", "not-a-batch-id"])
def test_the_live_answer_leaves_out_a_batch_the_user_may_not_see(
    client, studio, alice, charlie, batch, batch_id
):
    _photos(batch, alice, 1, State.PROCESSING, "w")
    client.force_login(charlie)
    answer = _live(client, (), batch.public_id if batch_id == "theirs" else batch_id)
    assert answer == {"tasks": [], "batch": None}


def test_without_a_batch_the_live_answer_is_as_before(client, studio, alice):
    working = listed_tasks(studio, alice, 1, state=State.PROCESSING)
    login_in_team(client, alice, studio)
    answer = client.get(reverse("jobs:task_live"), {"ids": _ids(working)[0]}).json()
    assert list(answer) == ["tasks"]


def test_the_live_answers_queries_do_not_grow_with_the_batch(
    client, studio, alice, batch, django_assert_max_num_queries
):
    few = _photos(batch, alice, 3, State.PROCESSING, "few")
    login_in_team(client, alice, studio)
    with CaptureQueriesContext(connection) as small:
        _live(client, few, batch.public_id)
    many = few + _photos(batch, alice, 40, State.SERVICE_ERROR, "many")
    with django_assert_max_num_queries(len(small)):
        _live(client, many, batch.public_id)


@pytest.mark.usefixtures("planned_picwish")
def test_a_picwish_batchs_live_answer_takes_at_most_ten_queries(
    client, studio, alice, batch, django_assert_max_num_queries
):
    """The dashboard's target, with every estimate worked out: photos PicWish is processing and
    photos waiting to be sent, each with its outlook, and the batch's failures."""
    now = timezone.now()
    at_picwish = {"batch": batch, "engine": Engine.PICWISH}
    working = listed_tasks(
        studio, alice, 3, name="working{n}.png", state=State.PROCESSING, submitted_at=now,
        processing_started_at=now, **at_picwish,
    )  # fmt: skip
    waiting = listed_tasks(
        studio, alice, 2, name="waiting{n}.png", state=State.WAITING_TO_SEND, **at_picwish
    )
    _photos(batch, alice, 2, State.SERVICE_ERROR, "busy")
    login_in_team(client, alice, studio)
    with django_assert_max_num_queries(10):
        answer = _live(client, working + waiting, batch.public_id)
    assert len(answer["tasks"]) == 5
    assert all("done in about" in row["outlook"] for row in answer["tasks"])
    assert answer["batch"]["counts"]["failed"] == 2 and "Retry these 2" in _failures(answer)
    # The batch finishes with its last photo: the latest of the rows' expected finishes.
    last = Outlook(None, max(datetime.fromisoformat(row["done_at"]) for row in answer["tasks"]))
    now = time.time()  # a moment after the answer was made
    said = {"All photos " + estimates.describe(last, now - lag) for lag in (0, 1)}
    assert answer["batch"]["outlook"] in said and "done in about" in answer["batch"]["outlook"]


def _failures(answer) -> str:
    return answer["batch"]["failures_html"]


def test_download_all_shows_once_a_result_is_done_and_the_live_answer_says_when(
    client, studio, alice, batch
):
    (working,) = _photos(batch, alice, 1, State.PROCESSING, "w")
    login_in_team(client, alice, studio)
    link = f'<a class="button primary" href="/tasks/batches/{batch.public_id}/download/">'
    html = _page(client, batch).content.decode()
    assert f'<p class="downloads js-download" hidden>{link}Download all</a>' in html
    assert _live(client, [working], batch.public_id)["batch"]["counts"]["done"] == 0
    Task.objects.filter(pk=working.pk).update(state=State.COMPLETED)
    html = _page(client, batch).content.decode()
    assert f'<p class="downloads js-download">{link}Download all</a>' in html
    assert _live(client, [], batch.public_id)["batch"]["counts"]["done"] == 1  # desk.js shows it
