"""The PicWish pipeline against the project's emulator over loopback HTTP.

The real client, rate limiter, dispatcher and Celery tasks run in this process (Celery in eager
mode); the emulator is a real HTTP server in a thread. Every HTTP code and every state code must
end in the right Task state with the state table's words.
"""

import hashlib
import json
import time
from datetime import timedelta

import httpx
import pytest
from cryptography.fernet import Fernet
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from config.celery_app import app as celery_app
from emulator import EmulatorConfig, PicWishEmulator
from restorations.accounts import crypto
from restorations.jobs import services, transitions
from restorations.jobs.dispatch import dispatch_due
from restorations.jobs.models import Engine, Task
from restorations.jobs.states import STATES, Category, State, describe
from restorations.picwish import client, leases, send
from tests.factories import login_in_team, photo_upload

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

KEY = "emulator-key"


@pytest.fixture
def emulator(settings):
    config = EmulatorConfig(
        api_key=KEY, qps=20, slots=4, duration_min=0.2, duration_max=0.4, seed=3
    )
    with PicWishEmulator(config).start() as running:
        settings.PICWISH_API_KEY = KEY
        settings.PICWISH_BASE_URL = running.url
        settings.PICWISH_QPS = 20
        settings.PICWISH_BACKOFF_SECONDS = 0.05
        settings.PICWISH_PAUSE_PROBE_SECONDS = 0.5
        celery_app.conf.task_always_eager = True
        yield running
        celery_app.conf.task_always_eager = False


def create(team, user, name="photo.png") -> Task:
    with transaction.atomic():
        return services.create_task(
            team=team,
            user=user,
            file=photo_upload(name),
            file_name=name,
            operation="scale",
            options={},
        )


def drive(*tasks: Task, seconds: float = 20, until=None) -> None:
    """Run the dispatcher, as beat would, until every task is final (or `until()` holds)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for task in tasks:
            task.refresh_from_db()
        if until() if until else all(task.is_final for task in tasks):
            return
        dispatch_due()
        time.sleep(0.05)
    states = [task.state for task in tasks]
    raise AssertionError(f"not done after {seconds} s: states {states}")


def test_a_photo_goes_through_picwish_and_its_result_is_stored_byte_for_byte(
    emulator, studio, alice
):
    task = create(studio, alice)
    assert task.engine == Engine.PICWISH
    drive(task)
    assert task.state == State.COMPLETED, task.failure_message
    assert task.remote_task_id and task.poll_count >= 1
    assert task.upstream_completed_at is not None and task.finished_at is not None
    served = httpx.get(_image_url(task)).content  # what PicWish served, fetched again
    with task.result.open("rb") as stored:
        assert stored.read() == served
    assert task.result_sha256 == hashlib.sha256(served).hexdigest()
    kinds = list(task.events.values_list("kind", flat=True))
    assert kinds[:3] == ["created", "state_changed", "submitted"]  # waiting, sending, queued
    assert kinds[-1] == "result_saved"
    assert emulator.counters()["tasks"][task.remote_task_id]["state"] == State.COMPLETED


def test_new_tasks_wait_for_the_dispatcher_which_books_each_create_a_slot(emulator, studio, alice):
    tasks = [create(studio, alice, f"p{n}.png") for n in range(3)]
    assert not emulator.counters()["create"]  # nothing sent on upload, not even one
    assert all(t.state == State.WAITING_TO_SEND and t.next_poll_at <= timezone.now() for t in tasks)
    drive(*tasks)
    assert emulator.counters()["create"] == {"200": 3}


def _image_url(task: Task) -> str:
    return json.loads(task.last_response)["data"]["image"]


PICWISH_FAILURES = [code for code in STATES if -100 < code < 0]


@pytest.mark.parametrize("code", PICWISH_FAILURES)
def test_every_failure_code_ends_in_that_state_with_the_tables_reason(
    emulator, studio, alice, client, code
):
    emulator.script(outcomes=[code])
    task = create(studio, alice)
    drive(task)
    assert task.state == code
    assert task.failure_code == code
    retried = task.retries.exists()
    assert retried == (describe(code).category == Category.TRANSIENT)
    login_in_team(client, alice, studio)
    page = client.get(reverse("jobs:task_detail", args=[task.public_id])).content.decode()
    assert describe(code).reason in page.replace("&#x27;", "'")


@pytest.mark.parametrize(
    ("answer", "final_state"),
    [(400, State.REFUSED), (404, State.REFUSED), (413, State.REFUSED)],
)
def test_create_refusals_fail_the_task_with_a_reason(emulator, studio, alice, answer, final_state):
    emulator.script(create=[answer])
    task = create(studio, alice)
    drive(task)
    assert task.state == final_state and task.last_http_status == answer
    assert not task.retries.exists()
    if answer == 413:
        assert "accepts up to 30 MB and 4096 × 4096 pixels" in task.failure_message


@pytest.mark.parametrize("answer", [429, 500, "drop", "drop_after_create"])
def test_create_faults_are_retried_and_the_task_completes(emulator, studio, alice, answer):
    emulator.script(create=[answer])
    task = create(studio, alice)
    drive(task)
    assert task.state == State.COMPLETED
    assert task.attempts >= 2
    kind = "rate_limited" if answer == 429 else "error"
    assert task.events.filter(kind=kind).exists()
    if answer == "drop_after_create":
        assert len(emulator.counters()["orphans"]) == 1
        assert task.events.filter(message__contains="orphan").exists()


@pytest.mark.parametrize(
    ("answer", "final_state"),
    [(400, State.REFUSED), (413, State.REFUSED), (404, State.UPSTREAM_LOST)],
)
def test_poll_refusals_fail_the_task(emulator, studio, alice, answer, final_state):
    emulator.script(poll=[answer])
    task = create(studio, alice)
    drive(task)
    assert task.state == final_state
    assert task.failure_message


@pytest.mark.parametrize("answer", [429, 500, "drop"])
def test_poll_faults_never_fail_the_task(emulator, studio, alice, answer):
    emulator.script(poll=[answer, answer])
    task = create(studio, alice)
    drive(task)
    assert task.state == State.COMPLETED


def test_server_errors_in_a_row_end_as_a_service_error(emulator, studio, alice):
    emulator.script(poll=[500] * 5)
    task = create(studio, alice)
    drive(task)
    assert task.state == State.SERVICE_ERROR
    assert "5 times in a row" in task.failure_message


def test_a_429_storm_fails_nothing(emulator, studio, alice, settings):
    emulator.configure(qps=2)
    settings.PICWISH_QPS = 50  # the site believes it may send far more than PicWish allows
    tasks = [create(studio, alice, f"p{n}.png") for n in range(6)]
    drive(*tasks, seconds=60)
    assert emulator.counters()["rate_limited"] > 0
    assert [t.state for t in tasks] == [State.COMPLETED] * 6


def test_an_expired_result_url_ends_in_the_result_expired_state(emulator, studio, alice):
    emulator.script(outcomes=[{"state": 1, "expire_result": True}])
    task = create(studio, alice)
    drive(task)
    assert task.state == State.RESULT_EXPIRED
    assert not task.result
    assert task.retries.exists()  # transient: tried again automatically


def test_cancel_during_processing_never_fetches_the_result(
    emulator, studio, alice, media_root, settings
):
    settings.PICWISH_POLL_INTERVAL = 0.3  # poll often, to see the task processing
    emulator.script(outcomes=[{"state": 1, "duration": 1.5}])
    task = create(studio, alice)
    drive(task, until=lambda: 0 < task.progress < 100)
    assert not task.is_final
    services.cancel(task, alice)
    time.sleep(2)  # PicWish finishes meanwhile
    for _ in range(10):
        dispatch_due()
        time.sleep(0.1)
    task.refresh_from_db()
    assert task.state == State.CANCELED
    assert not task.result and not (media_root / "results").exists()
    assert sum(emulator.counters()["download"].values()) == 0


def test_the_deadline_ends_a_task_picwish_never_finishes(emulator, studio, alice, settings):
    settings.PICWISH_TASK_DEADLINE = 0.5
    emulator.script(outcomes=[{"state": 1, "duration": 30}])
    task = create(studio, alice)
    drive(task)
    assert task.state == State.DEADLINE_PASSED


def test_a_broken_key_pauses_the_team_and_recovers_when_fixed(
    emulator, studio, alice, admin_client, client, settings
):
    settings.PICWISH_PAUSE_PROBE_SECONDS = 600  # only saving the new key can resume it soon
    studio.set_picwish_key("wrong-key")
    studio.save()
    task = create(studio, alice)
    drive(task, until=lambda: studio.__class__.objects.get(pk=studio.pk).key_paused_at)
    task.refresh_from_db()
    assert task.state == State.WAITING_TO_SEND and not task.is_final
    login_in_team(client, alice, studio)
    assert "PicWish rejected this team" in client.get(reverse("jobs:task_list")).content.decode()

    response = admin_client.post(
        reverse("admin:accounts_team_change", args=[studio.pk]),
        {
            "name": studio.name,
            "slug": studio.slug,
            "picwish_qps": 20,
            "retention_days": 30,
            "new_picwish_key": KEY,
            "memberships-TOTAL_FORMS": 0,
            "memberships-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.next_poll_at <= timezone.now()  # sent again at once, not at the next try
    drive(task)
    assert task.state == State.COMPLETED
    assert "PicWish rejected" not in client.get(reverse("jobs:task_list")).content.decode()


def test_a_key_fixed_at_picwish_recovers_by_itself(emulator, studio, alice):
    emulator.configure(api_key="not-yet-enabled")
    task = create(studio, alice)
    drive(task, until=lambda: studio.__class__.objects.get(pk=studio.pk).key_paused_at)
    emulator.configure(api_key=KEY)  # the account's service is enabled
    drive(task)
    assert task.state == State.COMPLETED
    studio.refresh_from_db()
    assert studio.key_paused_at is None


def test_polls_are_planned_not_fired_every_second(emulator, studio, alice):
    emulator.configure(duration_min=2.0, duration_max=2.0)
    task = create(studio, alice)
    drive(task)
    assert task.state == State.COMPLETED
    assert task.poll_count <= 3
    assert task.finished_at - task.submitted_at < timezone.timedelta(seconds=6)


def _creates(emulator) -> int:
    return sum(emulator.counters().get("create", {}).values())


def test_an_unreadable_key_is_never_sent_and_its_tasks_wait(emulator, studio, alice, settings):
    studio.set_picwish_key(KEY)
    studio.save()
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()  # the key was rotated
    settings.PICWISH_PAUSE_PROBE_SECONDS = 600
    task = create(studio, alice)
    assert task.engine == Engine.PICWISH  # a stored key never falls back to another engine
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        dispatch_due()
        time.sleep(0.05)
    task.refresh_from_db()
    assert task.state == State.WAITING_TO_SEND and task.attempts == 0
    assert task.next_poll_at > timezone.now() + timedelta(seconds=500)  # after the probe time
    assert _creates(emulator) == 0 and emulator.counters()["poll"] == {}


@pytest.mark.parametrize("breakage", ["missing original", "key not sendable"])
def test_a_send_that_keeps_failing_for_other_reasons_ends_with_a_reason(
    emulator, studio, alice, breakage
):
    task = create(studio, alice)
    if breakage == "missing original":
        task.upload.file.delete(save=False)
    else:  # stored before keys were checked on saving
        studio.picwish_key_encrypted = crypto.encrypt("clé-ünicode")
        studio.save()
    drive(task, seconds=30)
    assert task.state == State.NOT_SENT, task.failure_message
    assert task.attempts == leases.MAX_FAULTS
    assert f"{leases.MAX_FAULTS} times in a row" in task.failure_message
    assert _creates(emulator) == 0


def _answer_after_a_take_back(monkeypatch, *, sent_again: bool):
    """PicWish answers a create only after the dispatcher took the send back (its lease ran
    out) and, if `sent_again`, after another worker claimed the task to send it again."""
    real_create = client.PicWishClient.create

    def slow_create(self, *args, **kwargs):
        created = real_create(self, *args, **kwargs)
        task = Task.objects.get(state=State.SENDING)
        send.take_back(task, task.lease_expires_at + timedelta(seconds=1))
        if sent_again:
            transitions.claim(task.pk, State.WAITING_TO_SEND, State.SENDING)
        monkeypatch.setattr(client.PicWishClient, "create", real_create)
        return created

    monkeypatch.setattr(client.PicWishClient, "create", slow_create)


def test_a_late_create_answer_is_adopted_and_the_photo_sent_once(
    emulator, studio, alice, monkeypatch
):
    _answer_after_a_take_back(monkeypatch, sent_again=False)
    task = create(studio, alice)
    drive(task)
    assert task.state == State.COMPLETED, task.failure_message
    assert _creates(emulator) == 1  # PicWish ran (and billed) the photo once
    assert task.events.filter(message__contains="created after the send was given up").exists()


def test_a_late_create_answer_for_a_task_sent_again_is_recorded_with_its_id(
    emulator, studio, alice, monkeypatch
):
    _answer_after_a_take_back(monkeypatch, sent_again=True)
    task = create(studio, alice)
    drive(task, until=lambda: _creates(emulator) == 1 and task.state == State.SENDING)
    [remote_id] = emulator.counters()["tasks"]
    assert task.events.filter(kind="error", message__contains=remote_id).exists()
