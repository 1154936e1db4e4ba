"""The site around the dashboard: the home page and its example, the error pages, and what the
task list tells a new user."""

import re
import uuid

import cv2
import pytest
from django.template.loader import get_template
from django.test import Client
from django.urls import path, reverse
from PIL import Image

from benchmarks import home_example
from config.urls import urlpatterns as site_urlpatterns
from restorations.jobs.models import Batch
from tests.factories import listed_tasks, login_in_team, stored_task

STATIC_IMG = home_example.ROOT / "static" / "img"


def _boom(request):
    raise RuntimeError("a bug in a view")


# This module is also a URLconf: the site's URLs plus one view that fails (for the 500 page).
urlpatterns = [path("boom/", _boom), *site_urlpatterns]


# --- home page ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_visitors_learn_what_the_product_does_and_are_asked_to_sign_up(client):
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    for words in ("Upload photos", "watch each photo's progress", "download the results"):
        assert words in page
    for restoration in ("Old-photo repair", "Enhance", "Upscale", "Colourise", "Crop and correct"):
        assert restoration in page
    assert reverse("signup") in page and reverse("login") in page
    assert "example-before.jpg" in page and "example-after.jpg" in page
    assert "Go to your tasks" not in page


@pytest.mark.django_db
def test_signed_in_users_see_the_way_to_their_tasks(client, alice):
    client.force_login(alice)
    page = client.get("/").content.decode()
    assert "Go to your tasks" in page and reverse("jobs:task_list") in page
    assert "Create an account" not in page


def test_the_home_page_only_answers_get(client):
    assert client.post("/").status_code == 405


@pytest.mark.django_db
def test_the_example_images_are_the_sizes_the_page_says(client):
    page = client.get("/").content.decode()
    for name in (home_example.BEFORE, home_example.AFTER):
        tag = re.search(rf'<img src="[^"]*{re.escape(name)}" width="(\d+)" height="(\d+)"', page)
        assert tag, name
        with Image.open(STATIC_IMG / name) as image:
            assert image.size == (int(tag[1]), int(tag[2]))


@pytest.mark.slow
def test_the_example_is_the_built_in_engines_repair_of_the_damaged_photo(tmp_path):
    clean, damaged, repaired = home_example.example()
    assert cv2.PSNR(clean, repaired) > cv2.PSNR(clean, damaged) + 1.5
    before, after = home_example.write(tmp_path)
    # The committed images are what the script makes (JPEG, so compared loosely).
    for made, committed in ((before, home_example.BEFORE), (after, home_example.AFTER)):
        assert cv2.PSNR(cv2.imread(str(made)), cv2.imread(str(STATIC_IMG / committed))) > 40


# --- error pages --------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_missing_task_is_the_sites_404_page(client, alice):
    client.force_login(alice)
    response = client.get(reverse("jobs:task_detail", args=[uuid.uuid4()]))
    assert response.status_code == 404
    assert "404.html" in [t.name for t in response.templates]
    page = response.content.decode()
    assert "This page does not exist" in page and "Go to your tasks" in page


@pytest.mark.django_db
def test_an_outsiders_look_at_a_task_is_the_same_404_page(client, studio, alice, charlie):
    task = stored_task(studio, alice)
    client.force_login(charlie)
    response = client.get(reverse("jobs:task_detail", args=[task.public_id]))
    assert response.status_code == 404
    assert "This page does not exist" in response.content.decode()


@pytest.mark.django_db
def test_a_viewers_change_is_the_sites_403_page_with_the_reason(client, studio, alice, victor):
    task = stored_task(studio, alice)
    client.force_login(victor)
    response = client.post(reverse("jobs:task_cancel", args=[task.public_id]))
    assert response.status_code == 403
    assert "403.html" in [t.name for t in response.templates]
    page = response.content.decode()
    assert "You cannot do this here" in page and "Viewers cannot change tasks." in page


@pytest.mark.urls(__name__)
@pytest.mark.django_db
def test_a_failing_view_is_the_sites_500_page(settings):
    settings.DEBUG = False
    client = Client(raise_request_exception=False)
    response = client.get("/boom/")
    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong on our side" in page
    assert "a bug in a view" not in page  # nothing of the error is shown to the visitor


def test_the_500_page_renders_without_a_request_or_context():
    # As django.views.defaults.server_error renders it: no request, no context processors.
    page = get_template("500.html").render()
    assert "Something went wrong on our side" in page
    assert "css/desk.css" in page


# --- empty states -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_viewer_of_an_empty_team_is_told_who_can_upload(client, studio, victor):
    login_in_team(client, victor, studio)
    page = client.get(reverse("jobs:task_list")).content.decode()
    assert "has no photos yet" in page and "You are a viewer here" in page
    assert "Upload your first photo" not in page


@pytest.mark.django_db
def test_a_batch_without_photos_says_so(client, studio, alice):
    listed_tasks(studio, alice, 1)
    batch = Batch.objects.create(team=studio, created_by=alice, operation="scale")
    stored_task(studio, alice, batch=batch)
    batch.tasks.all().delete()  # its photos deleted, the batch (and its link) still there
    login_in_team(client, alice, studio)
    page = client.get(reverse("jobs:task_list"), {"batch": batch.public_id}).content.decode()
    assert "No photos left in this batch" in page
    assert "No photos match these filters" not in page


@pytest.mark.django_db
def test_a_batch_of_another_team_is_named_as_such(client, studio, alice, charlie):
    listed_tasks(studio, alice, 1)
    elsewhere = Batch.objects.create(
        team=charlie.personal_team(), created_by=charlie, operation="scale"
    )
    stored_task(charlie.personal_team(), charlie, batch=elsewhere)
    login_in_team(client, alice, studio)
    page = client.get(reverse("jobs:task_list"), {"batch": elsewhere.public_id}).content.decode()
    assert "No such batch in Studio" in page
    assert str(elsewhere) not in page
