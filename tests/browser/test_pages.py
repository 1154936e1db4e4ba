"""Every page a person can reach fits a phone's 390 px and a desktop, with no serious or
critical problem axe-core finds; the keyboard reaches the content. Screenshots of each page go
to docs/screenshots/ (the README shows the main ones)."""

import uuid
from dataclasses import dataclass

import pytest
from django.contrib.auth.tokens import default_token_generator
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from restorations.jobs import local_runs, services
from restorations.jobs.models import Batch, Task
from restorations.jobs.states import State
from tests.browser.support import (
    PHONE_WIDTH,
    ROOT,
    axe_violations,
    describe,
    no_horizontal_scroll,
    screenshot,
    sign_in,
    too_wide,
)
from tests.factories import stored_task

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DESKTOP_WIDTH = 1280
EXAMPLE = ROOT / "static" / "img" / "example-before.jpg"


@dataclass(frozen=True)
class Visit:
    path: str
    signed_in: bool = True


def _home(studio, alice):
    return Visit("/", signed_in=False)


def _signup(studio, alice):
    return Visit(reverse("signup"), signed_in=False)


def _login(studio, alice):
    return Visit(reverse("login"), signed_in=False)


def _password_reset(studio, alice):
    return Visit(reverse("password_reset"), signed_in=False)


def _password_reset_confirm(studio, alice):
    uid = urlsafe_base64_encode(force_bytes(alice.pk))
    token = default_token_generator.make_token(alice)
    return Visit(reverse("password_reset_confirm", args=[uid, token]), signed_in=False)


def _password_change(studio, alice):
    return Visit(reverse("password_change"))


def _profile(studio, alice):
    return Visit(reverse("profile"))


def _list_empty(studio, alice):
    return Visit(reverse("jobs:task_list"))


def _list(studio, alice):
    # Long names, with thumbnails, in each kind of state: the rows a busy team sees.
    states = {State.INVALID_IMAGE: 0, State.WAITING_TO_SEND: 0, State.PROCESSING: 60}
    states[State.COMPLETED] = 100
    for n, (state, progress) in enumerate(states.items()):
        task = stored_task(
            studio,
            alice,
            f"Grandparents' wedding, summer 1962, scan {n} at 1200 dpi.jpg",
            data=EXAMPLE.read_bytes(),
            operation="restoration-old-photo",
        )
        Task.objects.filter(pk=task.pk).update(state=state, progress=progress)
    return Visit(reverse("jobs:task_list"))


def _upload(studio, alice):
    return Visit(reverse("jobs:task_create"))


def _batch(studio, alice):
    # A batch with photos in flight, done, failed for two reasons (one a retry can help) and
    # canceled: the counts, the failure groups with their buttons, and the rows.
    batch = Batch.objects.create(team=studio, created_by=alice, operation="restoration-old-photo")
    states = [State.PROCESSING, State.COMPLETED, State.SERVICE_ERROR, State.SERVICE_ERROR]
    states += [State.INVALID_IMAGE, State.CANCELED]
    for n, state in enumerate(states):
        task = stored_task(
            studio,
            alice,
            f"Family album, page {n}, scanned at 1200 dpi.jpg",
            data=EXAMPLE.read_bytes(),
            operation="restoration-old-photo",
            batch=batch,
        )
        Task.objects.filter(pk=task.pk).update(state=state, progress=40)
    return Visit(reverse("jobs:batch_detail", args=[batch.public_id]))


def _detail(studio, alice):
    task = services.create_task(
        team=studio,
        user=alice,
        file=SimpleUploadedFile("Grandma's cat, 1958.jpg", EXAMPLE.read_bytes(), "image/jpeg"),
        file_name="Grandma's cat, 1958.jpg",
        operation="restoration-old-photo",
        options={"restoration_type": "1", "change_color": "0"},
    )
    local_runs.run(task.pk)  # the built-in engine, in this process
    task.refresh_from_db()
    assert task.state == State.COMPLETED
    return Visit(reverse("jobs:task_detail", args=[task.public_id]))


def _not_found(studio, alice):
    return Visit(reverse("jobs:task_detail", args=[uuid.uuid4()]))


PAGES = {
    "home": _home,
    "signup": _signup,
    "login": _login,
    "password-reset": _password_reset,
    "password-reset-confirm": _password_reset_confirm,
    "password-change": _password_change,
    "profile": _profile,
    "list-empty": _list_empty,
    "list": _list,
    # "upload" and "batch" are the upload flow's screenshots (test_upload.py).
    "upload-empty": _upload,
    "batch-failures": _batch,
    "detail": _detail,
    "not-found": _not_found,
}


@pytest.mark.parametrize("width", [PHONE_WIDTH, DESKTOP_WIDTH], ids=["phone", "desktop"])
@pytest.mark.parametrize("name", list(PAGES))
def test_the_page_fits_the_screen_and_axe_finds_nothing_serious(
    new_page, live_server, studio, alice, name, width
):
    visit = PAGES[name](studio, alice)
    page = new_page(width=width, height=844 if width == PHONE_WIDTH else 800)
    if visit.signed_in:
        sign_in(page, live_server, alice, studio)
    page.goto(live_server.url + visit.path)
    page.wait_for_load_state("load")

    assert no_horizontal_scroll(page), f"wider than {width} px: {too_wide(page)}"
    violations = axe_violations(page)
    assert violations == [], describe(violations)
    screenshot(page, name if width == DESKTOP_WIDTH else f"{name}-{PHONE_WIDTH}")


def test_the_task_list_stacks_its_rows_on_a_phone(new_page, live_server, studio, alice):
    visit = _list(studio, alice)
    page = new_page(width=PHONE_WIDTH, height=844)
    sign_in(page, live_server, alice, studio)
    page.goto(live_server.url + visit.path)
    row = page.locator("table.tasks tbody tr").first
    cells = row.locator("td")
    # One block per photo: its cells are stacked, each led by its column's name.
    boxes = [cells.nth(i).bounding_box() for i in range(1, cells.count())]
    assert all(box["x"] == boxes[0]["x"] for box in boxes)
    assert [b["y"] for b in boxes] == sorted(b["y"] for b in boxes)
    state = row.locator("td[data-label='State']")
    label = state.evaluate("cell => getComputedStyle(cell, '::before').content")
    assert label == '"State: "'
    assert page.locator("table.tasks thead").is_hidden() is False  # kept for screen readers
    assert page.locator("table.tasks thead").bounding_box()["width"] <= 1


def test_the_keyboard_skips_to_the_content_and_shows_where_it_is(page, live_server):
    page.goto(live_server.url + "/")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    assert skip.evaluate("link => link === document.activeElement")
    box = skip.bounding_box()
    assert box["y"] >= 0, "the focused skip link must be on screen"
    ring = skip.evaluate(
        "link => [getComputedStyle(link).outlineStyle, getComputedStyle(link).outlineWidth]"
    )
    assert ring[0] != "none" and float(ring[1].removesuffix("px")) >= 2  # not the browser's 1 px
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Create an account"  # the first control of the content, not the header


def test_the_team_is_switched_by_its_button_never_by_arrowing_through_the_list(
    page, live_server, studio, alice
):
    sign_in(page, live_server, alice)
    page.goto(f"{live_server.url}/tasks/")
    team = page.get_by_label("Team")
    assert team.locator("option:checked").inner_text() == alice.personal_team().name
    page.evaluate("() => { window.notReloaded = true; }")
    team.focus()
    page.keyboard.press("ArrowDown")  # a keyboard user reading the choices
    page.wait_for_timeout(500)
    assert team.locator("option:checked").inner_text() == "Studio"
    assert page.evaluate("() => window.notReloaded") is True  # still the same page
    page.get_by_role("button", name="Switch").click()
    page.wait_for_url("**/tasks/")
    assert page.get_by_label("Team").locator("option:checked").inner_text() == "Studio"
