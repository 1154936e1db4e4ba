"""The Task admin: staff read everything the pipeline writes, and change none of it by hand."""

import pytest
from django.urls import reverse

from restorations.jobs.models import Task
from restorations.jobs.states import State
from tests.factories import UserFactory, scale_tasks

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client):
    client.force_login(UserFactory(username="staff", is_staff=True, is_superuser=True))
    return client


def test_the_change_form_changes_the_review_note_and_nothing_the_pipeline_owns(
    staff_client, studio, alice, charlie
):
    [task] = scale_tasks(studio, alice, 1)
    before = Task.objects.values().get(pk=task.pk)
    other_team = charlie.personal_team()
    response = staff_client.post(
        reverse("admin:jobs_task_change", args=[task.pk]),
        {
            "review_note": "looks fine",
            # Every field the pipeline owns, as a hand-edited form would send it:
            "state": State.COMPLETED,
            "progress": 100,
            "next_poll_at_0": "2030-01-01",
            "next_poll_at_1": "00:00:00",
            "lease_expires_at_0": "2030-01-01",
            "lease_expires_at_1": "00:00:00",
            "team": other_team.pk,
            "upload": task.upload.pk,
            "result": "results/elsewhere.png",
            "remote_task_id": "forged",
            "attempts": 9,
            "events-TOTAL_FORMS": 0,
            "events-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    after = Task.objects.values().get(pk=task.pk)
    changed = {name for name in after if after[name] != before[name]}
    assert changed == {"review_note", "updated_at"}
    assert after["review_note"] == "looks fine"


def test_the_change_page_shows_the_state_with_its_label(staff_client, studio, alice):
    [task] = scale_tasks(studio, alice, 1)
    page = staff_client.get(reverse("admin:jobs_task_change", args=[task.pk])).content.decode()
    assert task.state_info.label in page and 'name="state"' not in page


def test_tasks_are_not_added_by_hand(staff_client):
    assert staff_client.get(reverse("admin:jobs_task_add")).status_code == 403
