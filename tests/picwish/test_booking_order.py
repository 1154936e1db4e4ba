"""The order in which the dispatcher gives one PicWish key's slots to due tasks."""

from datetime import timedelta

import pytest
from django.utils import timezone

from restorations.jobs import queue
from restorations.jobs.models import Engine, Task
from restorations.jobs.states import State
from restorations.picwish import dispatch as picwish_dispatch
from restorations.picwish.dispatch import LATER_POLL_SLACK, booking_order
from tests.factories import scale_tasks

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("planned_picwish")]


def make_tasks(team, user, count: int) -> list[Task]:
    tasks = scale_tasks(team, user, count)
    assert {task.engine for task in tasks} == {Engine.PICWISH}
    return tasks


def at_picwish(task: Task, *, due_seconds_ago: float, polls: int = 0) -> Task:
    due = timezone.now() - timedelta(seconds=due_seconds_ago)
    Task.objects.filter(pk=task.pk).update(
        state=State.PROCESSING, submitted_at=due, next_poll_at=due, poll_count=polls
    )
    task.refresh_from_db()
    return task


def test_a_first_poll_goes_before_a_later_poll_less_than_the_slack_more_overdue(studio, alice):
    first, later_less, later_more = make_tasks(studio, alice, 3)
    first = at_picwish(first, due_seconds_ago=0.0)
    later_less = at_picwish(later_less, due_seconds_ago=LATER_POLL_SLACK - 0.3, polls=1)
    later_more = at_picwish(later_more, due_seconds_ago=LATER_POLL_SLACK + 0.3, polls=2)

    assert booking_order([later_less, first, later_more]) == [later_more, first, later_less]


def test_a_send_goes_first_when_picwish_holds_too_few_of_the_teams_tasks(studio, alice):
    send, poll = make_tasks(studio, alice, 2)
    poll = at_picwish(poll, due_seconds_ago=0.5, polls=1)

    assert booking_order([send, poll]) == [send, poll]


def test_sends_wait_for_due_polls_while_picwish_holds_a_long_queue(studio, alice):
    *held, send = make_tasks(studio, alice, 12)
    held = [at_picwish(task, due_seconds_ago=-60) for task in held]  # polls not due yet
    poll = held[0] = at_picwish(held[0], due_seconds_ago=0.0)

    assert booking_order([send, poll]) == [poll, send]


def test_with_a_fixed_poll_interval_the_oldest_due_goes_first(studio, alice, settings):
    settings.PICWISH_POLL_INTERVAL = 1.0
    send, poll = make_tasks(studio, alice, 2)
    poll = at_picwish(poll, due_seconds_ago=0.5, polls=1)

    assert booking_order([poll, send]) == [poll, send]


def test_a_poll_due_before_the_next_tick_is_booked_now_for_its_due_time(studio, alice, monkeypatch):
    soon, later = make_tasks(studio, alice, 2)
    soon = at_picwish(soon, due_seconds_ago=-0.15, polls=1)
    later = at_picwish(later, due_seconds_ago=-2.0, polls=1)
    handed_out = []
    monkeypatch.setattr(
        queue, "send", lambda name, pk, lease, slot_at: handed_out.append((name, pk, slot_at))
    )

    assert picwish_dispatch.dispatch(timezone.now(), batch=200) == 1

    [(name, pk, slot_at)] = handed_out
    assert name == queue.PICWISH_POLL and pk == soon.pk
    assert soon.next_poll_at.timestamp() - 0.01 <= slot_at <= soon.next_poll_at.timestamp() + 0.1
