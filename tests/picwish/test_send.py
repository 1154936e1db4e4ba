"""Sending, without PicWish: the send lease and the bound on failed sends."""

import secrets
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from restorations.jobs.models import Engine, Task
from restorations.jobs.states import State
from restorations.picwish import accounts, client, leases, ratelimit, send
from tests.factories import scale_tasks

pytestmark = pytest.mark.django_db


def test_a_send_lease_outlasts_the_slowest_send_the_client_allows(settings):
    settings.PICWISH_LEASE_SECONDS = 60  # the default, shorter than a slow 30 MB upload
    slowest = accounts.ACQUIRE_TIMEOUT + client.MAX_CREATE_SECONDS
    assert leases.send_lease_length() > timedelta(seconds=slowest)
    settings.PICWISH_LEASE_SECONDS = 3600
    assert leases.send_lease_length() == timedelta(seconds=3600)


def _sending(team, user, *, faults: int) -> Task:
    [task] = scale_tasks(team, user, 1)
    past = timezone.now() - timedelta(seconds=1)
    Task.objects.filter(pk=task.pk).update(
        engine=Engine.PICWISH, state=State.SENDING, fault_count=faults, lease_expires_at=past
    )
    task.refresh_from_db()
    return task


def test_a_send_taken_back_waits_to_be_sent_again(studio, alice):
    task = _sending(studio, alice, faults=0)
    send.take_back(task, timezone.now())
    task.refresh_from_db()
    assert task.state == State.WAITING_TO_SEND and task.fault_count == 1
    assert task.events.filter(kind="error", from_state=State.SENDING).exists()


def test_sends_taken_back_too_often_fail_with_a_reason(studio, alice):
    task = _sending(studio, alice, faults=leases.MAX_FAULTS - 1)
    send.take_back(task, timezone.now())
    task.refresh_from_db()
    assert task.state == State.NOT_SENT and task.is_final
    assert str(leases.MAX_FAULTS) in task.failure_message
    assert task.state_info.retry_can_help


def test_a_send_whose_lease_still_holds_is_left_alone(studio, alice):
    task = _sending(studio, alice, faults=0)
    Task.objects.filter(pk=task.pk).update(lease_expires_at=timezone.now() + timedelta(minutes=1))
    task.refresh_from_db()
    send.take_back(task, timezone.now())
    task.refresh_from_db()
    assert task.state == State.SENDING


def test_a_late_worker_gives_its_task_back_at_once_while_the_key_is_booked_ahead(
    settings, tmp_path
):
    settings.PICWISH_RATE_LIMIT_URL = ""
    settings.CELERY_BROKER_URL = "memory://"  # the file limiter, in this test's folder
    settings.VAR_DIR = tmp_path
    account = accounts.Account(secrets.token_hex(), 2.0)
    booked = ratelimit.limiter_for_settings().reserve_many(account.key_id, 2.0, 4, horizon=3.0)
    assert booked[-1] > 1.5  # the dispatcher has the key's next 2 s
    started = time.monotonic()
    # A second late for its slot: the worker would have to wait 2 s for a gap. It gives the
    # task back to the dispatcher instead, holding the worker no longer than ACQUIRE_TIMEOUT.
    assert account.take_slot(time.time() - 1.0) is False
    assert time.monotonic() - started < accounts.ACQUIRE_TIMEOUT + 0.2
