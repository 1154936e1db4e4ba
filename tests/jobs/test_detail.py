"""A task's page: the before-and-after comparison and the inline images behind it, live
progress, the timeline in plain words, the failure's reason and advice, retry and cancel,
downloads and the date the files will be deleted."""

import re
from datetime import timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone

from restorations.jobs import services, transitions
from restorations.jobs.models import Engine, EventKind, Task, Upload
from restorations.jobs.states import State
from tests.factories import login_in_team, photo_bytes, restored_task, stored_task

pytestmark = pytest.mark.django_db

VIEW_URLS = ["jobs:view_original", "jobs:view_result"]


@pytest.fixture
def task(studio, alice):
    return stored_task(studio, alice, "family.png")


@pytest.fixture
def restored(studio, alice):
    return restored_task(studio, alice, "family.png")


def _page(client, user, task) -> str:
    client.force_login(user)
    response = client.get(reverse("jobs:task_detail", args=[task.public_id]))
    assert response.status_code == 200
    return response.content.decode()


def _text(html: str) -> str:
    """The page's words without tags, spaces collapsed."""
    words = " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())
    return re.sub(r" ([,.;:])", r"\1", words)


# --- the comparison and the images it shows ------------------------------------------------


def test_a_restored_task_compares_before_and_after_in_one_box(client, bob, restored):
    html = _page(client, bob, restored)
    assert 'id="compare"' in html
    assert f"aspect-ratio: {restored.upload.width} / {restored.upload.height}" in html
    before = reverse("jobs:view_original", args=[restored.public_id])
    after = reverse("jobs:view_result", args=[restored.public_id])
    assert f'class="compare-before" src="{before}"' in html
    assert f'class="compare-after" src="{after}"' in html
    assert '<label for="compare-split"' in html
    assert re.search(r'<input type="range" id="compare-split"[^>]*min="0" max="100"', html)
    assert "js/compare.js" in html
    assert restored.result_width > restored.upload.width  # enlarged, yet drawn in the same box


def test_no_comparison_before_there_is_a_result(client, alice, task):
    html = _page(client, alice, task)
    assert 'id="compare"' not in html and "compare.js" not in html


def test_shown_files_are_the_stored_images_inline(client, victor, restored):
    client.force_login(victor)
    for name, field_file, content_type in [
        ("jobs:view_original", restored.upload.file, "image/png"),
        ("jobs:view_result", restored.result, "image/png"),
    ]:
        response = client.get(reverse(name, args=[restored.public_id]))
        assert response.status_code == 200
        assert response["Content-Type"] == content_type
        assert response["Content-Disposition"].startswith("inline;")
        assert "private" in response["Cache-Control"]
        with field_file.open("rb") as stored:
            assert b"".join(response.streaming_content) == stored.read()


@pytest.mark.parametrize("name", VIEW_URLS)
def test_outsiders_get_404_for_shown_files(client, charlie, restored, name):
    client.force_login(charlie)
    assert client.get(reverse(name, args=[restored.public_id])).status_code == 404


@pytest.mark.parametrize("name", VIEW_URLS)
def test_shown_files_need_a_sign_in_and_refuse_post(client, alice, restored, name):
    url = reverse(name, args=[restored.public_id])
    assert client.get(url)["Location"].startswith(reverse("login"))
    client.force_login(alice)
    assert client.post(url).status_code == 405


def test_no_result_to_show_is_404(client, alice, task):
    client.force_login(alice)
    assert client.get(reverse("jobs:view_result", args=[task.public_id])).status_code == 404


def test_a_tiff_original_is_compared_through_its_preview(client, studio, alice):
    tiff = photo_bytes(fmt="TIFF")
    task = stored_task(studio, alice, "scan.tif", data=tiff, operation="scale-pro")
    Task.objects.filter(pk=task.pk).update(result=task.upload.file.name)  # any stored result
    html = _page(client, alice, task)
    preview = reverse("jobs:thumbnail", args=[task.public_id])
    assert f'class="compare-before" src="{preview}"' in html
    assert "which browsers cannot show" in html


def test_on_s3_shown_files_redirect_to_a_signed_url_without_attachment(
    client, settings, alice, restored
):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "desk",
                "endpoint_url": "http://127.0.0.1:9",
                "access_key": "test",
                "secret_key": "test-secret",
                "querystring_auth": True,
            },
        },
    }
    client.force_login(alice)

    def disposition(name):
        response = client.get(reverse(name, args=[restored.public_id]))
        assert response.status_code == 302
        query = parse_qs(urlsplit(response["Location"]).query)
        assert "Signature" in query or "X-Amz-Signature" in query
        return query["response-content-disposition"][0]

    assert disposition("jobs:view_result") == 'inline; filename="family-restored.png"'
    assert disposition("jobs:view_original") == 'inline; filename="family.png"'
    assert disposition("jobs:download_result") == 'attachment; filename="family-restored.png"'


# --- progress, reason and advice -----------------------------------------------------------


def test_in_flight_the_page_shows_progress_and_asks_for_live_updates(client, alice, task):
    Task.objects.filter(pk=task.pk).update(progress=40)
    html = _page(client, alice, task)
    assert f'data-task-id="{task.public_id}" data-final="0"' in html
    assert re.search(r'<progress id="task-progress" class="js-progress" max="100" value="40"', html)
    assert "last checked" in html
    assert task.state_info.reason in html and 'class="reason js-reason"' in html


def test_a_failure_shows_the_state_tables_reason_and_advice(client, alice, task):
    services.fail(task, State.INVALID_IMAGE, "cannot identify image file")
    html = _page(client, alice, task)
    info = task.state_info
    assert 'class="outcome outcome-input"' in html
    assert info.reason in html and info.advice in html
    assert "Details: cannot identify image file" in html
    assert "<progress" not in html
    assert ">Retry</button>" not in html  # the table says a retry cannot help


# --- the timeline --------------------------------------------------------------------------


def _timeline(html: str) -> str:
    return _text(html[html.index('<ol class="timeline">') :])


def test_the_timeline_tells_a_built_in_run_in_plain_words(client, alice, restored):
    text = _timeline(_page(client, alice, restored))
    steps = [
        "Uploaded by alice",
        "In the built-in engine's queue",
        "The built-in engine is processing it",
        "The built-in engine finished; saving the result",
        "Result saved, ready to download",
    ]
    positions = [text.index(step) for step in steps]
    assert positions == sorted(positions)
    first = restored.events.first().created_at
    assert re.search(rf"{first:%-d %b %Y, %H:%M:%S}\s+Uploaded", text)


def test_the_timeline_tells_a_picwish_run_in_plain_words(client, studio, alice, task):
    Task.objects.filter(pk=task.pk).update(engine=Engine.PICWISH, state=State.WAITING_TO_SEND)
    task.refresh_from_db()
    transitions.move(task, State.SENDING)
    transitions.note(task, EventKind.RATE_LIMITED, "PicWish answered 429 to a create; waiting")
    transitions.move(task, State.QUEUED, kind=EventKind.SUBMITTED, message="PicWish task t-1")
    transitions.move(task, State.PROCESSING, cause=transitions.Cause.UPSTREAM)
    transitions.move(task, State.DEADLINE_PASSED)
    text = _timeline(_page(client, alice, task))
    steps = [
        "Being sent to PicWish",
        "PicWish asked to slow down; waiting a moment",
        "Sent to PicWish",
        "PicWish task t-1",
        "PicWish is processing it",
        "PicWish did not finish in time",
        "Retried as attempt 2",  # a temporary problem: retried automatically
        "Automatically, as the problem was temporary",
    ]
    positions = [text.index(step) for step in steps]
    assert positions == sorted(positions)


# --- retry and cancel ----------------------------------------------------------------------


def test_retry_in_one_click_links_both_attempts(client, alice, task):
    services.fail(task, State.SERVICE_ERROR)
    client.force_login(alice)
    response = client.post(reverse("jobs:task_retry", args=[task.public_id]), follow=True)
    new = task.retries.get()
    assert response.redirect_chain[-1][0] == reverse("jobs:task_detail", args=[new.public_id])
    new_page = _text(response.content.decode())
    assert "Sent again as attempt 2." in new_page
    assert "Attempt 2 — earlier attempt" in new_page
    assert reverse("jobs:task_detail", args=[task.public_id]) in response.content.decode()

    old = _page(client, alice, task)
    new_url = reverse("jobs:task_detail", args=[new.public_id])
    assert f'Retried as <a href="{new_url}">attempt 2</a>' in old
    assert "Attempt 1" in _text(old)
    assert ">Retry</button>" not in old  # the photo's latest attempt is the one to retry
    assert f'<a href="{new_url}">Retried as attempt 2</a>' in old  # in the timeline too


def test_a_second_click_on_retry_makes_no_third_attempt(client, alice, task):
    services.fail(task, State.SERVICE_ERROR)
    client.force_login(alice)
    url = reverse("jobs:task_retry", args=[task.public_id])
    first = client.post(url)
    made = task.retries.get()
    second = client.post(url, follow=True)
    assert first["Location"] == second.redirect_chain[-1][0]
    assert second.redirect_chain[-1] == (reverse("jobs:task_detail", args=[made.public_id]), 303)
    assert "already sent again as attempt 2" in second.content.decode()
    assert services.retry(task, alice) == made  # a second click that passed the view's check
    assert Task.objects.count() == 2


def test_a_retried_photos_pages_take_at_most_ten_queries_each(
    client, alice, task, django_assert_max_num_queries
):
    """The dashboard's target: the page of an attempt and of its retry, in a team chosen in the
    session, each within 10 queries (the session and user included)."""
    services.fail(task, State.SERVICE_ERROR)
    new = services.retry(task, alice)
    login_in_team(client, alice, task.team)
    for attempt, shown in ((task, "Retried as"), (new, "Attempt 2")):
        with django_assert_max_num_queries(10):
            response = client.get(reverse("jobs:task_detail", args=[attempt.public_id]))
        assert shown in response.content.decode()


def test_cancel_from_the_page_and_the_timeline_says_who(client, bob, task):
    assert ">Cancel</button>" in _page(client, bob, task)
    client.post(reverse("jobs:task_cancel", args=[task.public_id]))
    html = _page(client, bob, task)
    assert "Canceled by bob" in _timeline(html)
    assert ">Cancel</button>" not in html and ">Retry</button>" in html


@pytest.mark.parametrize("state", [State.QUEUED, State.SERVICE_ERROR])
def test_viewers_see_no_cancel_or_retry_and_cannot_use_them(client, victor, task, state):
    if state != State.QUEUED:
        services.fail(task, state)
    html = _page(client, victor, task)
    assert ">Cancel</button>" not in html and ">Retry</button>" not in html
    for name in ["jobs:task_cancel", "jobs:task_retry"]:
        assert client.post(reverse(name, args=[task.public_id])).status_code == 403
    task.refresh_from_db()
    assert task.state == state and not task.retries.exists()


# --- downloads and retention ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "result", "expected"),
    [
        ("Grandad 1961.jpg", "results/t/x.png", "Grandad 1961-restored.png"),
        ("archive.tar.jpeg", "results/t/x.jpg", "archive.tar-restored.jpg"),
        ("scan", "results/t/x.png", "scan-restored.png"),
        (".png", "results/t/x.png", "photo-restored.png"),
        ("oma..", "results/t/x.webp", "oma-restored.webp"),
    ],
)
def test_the_result_downloads_as_the_originals_name_restored(original, result, expected):
    task = Task(upload=Upload(original_name=original), result=result)
    assert task.result_download_name() == expected


def test_downloads_of_the_original_and_the_result(client, bob, restored):
    html = _page(client, bob, restored)
    assert "“family.png”" in html and "“family-restored.png”" in html
    result = client.get(reverse("jobs:download_result", args=[restored.public_id]))
    assert result["Content-Disposition"] == 'attachment; filename="family-restored.png"'
    original = client.get(reverse("jobs:download_original", args=[restored.public_id]))
    assert original["Content-Disposition"] == 'attachment; filename="family.png"'


def test_the_page_says_when_the_files_will_be_deleted(client, studio, alice, restored):
    studio.retention_days = 7
    studio.save()
    finished = timezone.now() - timedelta(days=2)
    Task.objects.filter(pk=restored.pk).update(finished_at=finished)
    text = _text(_page(client, alice, restored))
    deleted_on = finished + timedelta(days=7)
    assert f"Kept until {deleted_on:%-d %B %Y}, then deleted" in text
    assert "7 days after a photo's last restoration finished" in text


def test_in_flight_the_page_says_how_long_files_are_kept(client, alice, task):
    text = _text(_page(client, alice, task))
    assert "keeps files 30 days after a photo's last restoration finished" in text
    assert "Kept until" not in text
