"""The task list: state groups, filters, search, keyset pagination, empty states, and a number
of queries that does not grow with the page."""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from restorations.jobs import listing, states
from restorations.jobs.models import Batch, Task, Upload
from restorations.jobs.states import Group, State
from tests.factories import listed_tasks, login_in_team, plan

pytestmark = pytest.mark.django_db

UNKNOWN_CODES = [7, 99, -200]  # codes nobody documented still fall into a group


def _names(response) -> list[str]:
    return re.findall(r'<a href="/tasks/[0-9a-f-]+/">([^<]+)</a>', response.content.decode())


def _link(response, label) -> str | None:
    found = re.search(rf'<a href="(\?[^"]*)">{label}</a>', response.content.decode())
    return found and found.group(1).replace("&amp;", "&")


@pytest.fixture
def page_of_3(monkeypatch):
    monkeypatch.setattr(listing, "PAGE_SIZE", 3)


@pytest.mark.parametrize("code", [*states.STATES, *UNKNOWN_CODES])
def test_each_code_is_in_exactly_the_group_its_query_finds(studio, alice, code):
    listed_tasks(studio, alice, 1, state=code)
    found = [group for group, query in states.GROUP_QUERIES.items() if Task.objects.filter(query)]
    assert found == [states.group_of(code)]


@pytest.mark.parametrize(
    ("code", "group"),
    [
        (State.WAITING_TO_SEND, Group.WAITING),
        (State.QUEUED, Group.WAITING),
        (State.PROCESSING, Group.IN_PROGRESS),
        (State.SAVING_RESULT, Group.IN_PROGRESS),
        (State.COMPLETED, Group.DONE),
        (State.INVALID_IMAGE, Group.FAILED),
        (State.CANCELED, Group.CANCELED),
    ],
)
def test_the_list_filters_by_state_group(client, studio, alice, code, group):
    listed_tasks(studio, alice, 1, name="match.png", state=code)
    other = State.COMPLETED if group != Group.DONE else State.CANCELED
    listed_tasks(studio, alice, 1, name="other.png", state=other)
    login_in_team(client, alice, studio)
    assert _names(client.get(reverse("jobs:task_list"), {"group": group})) == ["match.png"]


def test_the_list_filters_by_operation_and_batch(client, studio, alice):
    batch = Batch.objects.create(team=studio, created_by=alice, operation="scale")
    listed_tasks(studio, alice, 1, name="in-batch.png", batch=batch)
    listed_tasks(studio, alice, 1, name="colour.png", operation="colorization")
    login_in_team(client, alice, studio)
    url = reverse("jobs:task_list")
    assert _names(client.get(url, {"operation": "colorization"})) == ["colour.png"]
    response = client.get(url, {"batch": str(batch.public_id)})
    assert _names(response) == ["in-batch.png"]
    link = f'Batch: <a href="{reverse("jobs:batch_detail", args=[batch.public_id])}">1 photo · '
    assert link in response.content.decode()


def test_search_finds_a_substring_of_the_file_name_in_any_case(client, studio, alice):
    for name in ["Grandad 1961.jpg", "wedding.png", "GRANDMA.png"]:
        listed_tasks(studio, alice, 1, name=name)
    login_in_team(client, alice, studio)
    found = _names(client.get(reverse("jobs:task_list"), {"q": "gRaNd"}))
    assert found == ["GRANDMA.png", "Grandad 1961.jpg"]


def test_newest_first(client, studio, alice):
    listed_tasks(studio, alice, 3)
    login_in_team(client, alice, studio)
    names = _names(client.get(reverse("jobs:task_list")))
    assert names == ["photo2.png", "photo1.png", "photo0.png"]


def _walk_older(client, first_query) -> list[list[str]]:
    pages, response = [], client.get(reverse("jobs:task_list"), first_query)
    while True:
        pages.append(_names(response))
        older = _link(response, "Older")
        if not older:
            return pages
        response = client.get(reverse("jobs:task_list") + older)


def test_pages_neither_repeat_nor_miss_rows_with_equal_creation_times(
    client, studio, alice, page_of_3
):
    listed_tasks(studio, alice, 8, created_at=timezone.now())  # all in the same microsecond
    login_in_team(client, alice, studio)
    pages = _walk_older(client, {})
    assert [len(page) for page in pages] == [3, 3, 2]
    assert sorted(sum(pages, [])) == sorted(f"photo{n}.png" for n in range(8))


def test_newer_goes_back_to_the_same_rows(client, studio, alice, page_of_3):
    listed_tasks(studio, alice, 7)
    login_in_team(client, alice, studio)
    first = client.get(reverse("jobs:task_list"))
    assert _link(first, "Newer") is None
    second = client.get(reverse("jobs:task_list") + _link(first, "Older"))
    back = client.get(reverse("jobs:task_list") + _link(second, "Newer"))
    assert _names(back) == _names(first) and _link(back, "Newer") is None


def test_a_deep_page_reads_its_rows_and_only_asks_whether_others_exist(
    client, studio, alice, page_of_3
):
    listed_tasks(studio, alice, 12)
    login_in_team(client, alice, studio)
    second = _link(client.get(reverse("jobs:task_list")), "Older")
    third = _link(client.get(reverse("jobs:task_list") + second), "Older")
    with CaptureQueriesContext(connection) as captured:
        page = client.get(reverse("jobs:task_list") + third)
    assert _link(page, "Newer") and _link(page, "Older")
    task_rows = [q["sql"] for q in captured if 'FROM "jobs_task"' in q["sql"]]
    # One query for the page's rows (one more than a page), one asking whether newer ones
    # exist; never one that reads every newer row.
    assert len(task_rows) == 2
    assert all("LIMIT" in sql for sql in task_rows)


def test_a_task_added_after_page_one_does_not_shift_page_two(client, studio, alice, page_of_3):
    listed_tasks(studio, alice, 6)
    login_in_team(client, alice, studio)
    first = client.get(reverse("jobs:task_list"))
    listed_tasks(studio, alice, 1, name="late.png")
    second = client.get(reverse("jobs:task_list") + _link(first, "Older"))
    assert _names(second) == ["photo2.png", "photo1.png", "photo0.png"]


def test_the_pager_keeps_the_filters(client, studio, alice, page_of_3):
    listed_tasks(studio, alice, 5, name="keep{n}.png", state=State.COMPLETED)
    listed_tasks(studio, alice, 5, name="drop{n}.png", state=State.QUEUED)
    login_in_team(client, alice, studio)
    pages = _walk_older(client, {"group": "done", "q": "keep"})
    assert sorted(sum(pages, [])) == [f"keep{n}.png" for n in range(5)]


def test_a_cursor_that_is_not_one_shows_the_first_page(client, studio, alice):
    listed_tasks(studio, alice, 2)
    login_in_team(client, alice, studio)
    response = client.get(reverse("jobs:task_list"), {"older": "not-a-cursor"})
    assert _names(response) == ["photo1.png", "photo0.png"]


def test_a_new_user_is_told_to_upload(client, studio, alice):
    login_in_team(client, alice, studio)
    page = client.get(reverse("jobs:task_list")).content.decode()
    assert "No photos yet" in page and "Upload your first photo" in page


def test_no_match_offers_to_clear_the_filters(client, studio, alice):
    listed_tasks(studio, alice, 1)
    login_in_team(client, alice, studio)
    page = client.get(reverse("jobs:task_list"), {"q": "nothing like it"}).content.decode()
    assert "No photos match these filters" in page and "Clear filters" in page
    assert "No photos yet" not in page


def test_in_flight_rows_say_when_they_were_last_checked(client, studio, alice):
    (task,) = listed_tasks(studio, alice, 1, state=State.PROCESSING, progress=40)
    listed_tasks(studio, alice, 1, state=State.COMPLETED)
    Task.objects.filter(pk=task.pk).update(updated_at=timezone.now() - timedelta(seconds=7))
    login_in_team(client, alice, studio)
    page = client.get(reverse("jobs:task_list")).content.decode()
    assert page.count("last checked") == 1 and "last checked 7 s ago" in page
    assert 'value="40"' in page


def _fill(studio, alice, pairs: int) -> None:
    """Finished rows of a batch, with result thumbnails, and in-flight rows outside it."""
    batch = Batch.objects.create(team=studio, created_by=alice, operation="scale")
    done = listed_tasks(studio, alice, pairs, batch=batch, state=State.COMPLETED)
    listed_tasks(studio, alice, pairs, state=State.PROCESSING)
    Task.objects.filter(pk__in=[task.pk for task in done]).update(
        result="results/r.png", result_thumbnail="thumbnails/r.webp"
    )


def test_queries_do_not_grow_with_the_page(client, studio, alice, django_assert_max_num_queries):
    login_in_team(client, alice, studio)
    _fill(studio, alice, 3)
    with CaptureQueriesContext(connection) as few:
        response = client.get(reverse("jobs:task_list"))
    assert len(_names(response)) == 6
    _fill(studio, alice, 25)
    with django_assert_max_num_queries(len(few)):
        response = client.get(reverse("jobs:task_list"))
    assert len(_names(response)) == 50


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigram index is PostgreSQL's")
def test_the_name_search_can_read_the_trigram_index(studio, alice):
    listed_tasks(studio, alice, 3)
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table would be scanned
        plan = Upload.objects.filter(original_name__icontains="hoto1").explain()
    assert "upload_name_trgm" in plan


@pytest.mark.parametrize("group", [Group.WAITING, Group.IN_PROGRESS])
def test_a_group_in_flight_is_read_from_its_own_index(studio, alice, group):
    """A team's tasks in flight are a handful among its history: their filters read the partial
    index of tasks in flight in the list's order, not the whole history (PostgreSQL)."""
    if connection.vendor != "postgresql":
        pytest.skip("the list's indexes are checked on PostgreSQL (set DATABASE_URL)")
    listed_tasks(studio, alice, 500, state=State.COMPLETED)
    listed_tasks(studio, alice, 5, state=State.PROCESSING)
    listed_tasks(studio, alice, 5, state=State.WAITING_TO_SEND)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE jobs_task")
    filtered = listing.Filters.from_query({"group": group}).apply(Task.objects.filter(team=studio))
    explained = plan(filtered.order_by("-created_at", "-pk")[: listing.PAGE_SIZE + 1])
    assert "using task_team_in_flight on jobs_task" in explained, explained
    assert "Sort" not in explained, explained
