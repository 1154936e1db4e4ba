"""Re-planning the first poll of a team's queued PicWish tasks when one of its tasks finishes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from restorations.jobs.models import Task
from restorations.jobs.states import State
from restorations.picwish import client as picwish
from restorations.picwish import planner as poll_planner
from restorations.picwish import planning
from tests.factories import scale_tasks

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("planned_picwish")]


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def test_a_queued_task_starts_in_the_slot_a_finished_task_freed_and_keeps_an_overdue_poll(
    studio, alice
):
    *running, finished, queued = scale_tasks(studio, alice, 5)
    for task in running:  # three of the four slots: still processing, progress not yet seen
        Task.objects.filter(pk=task.pk).update(
            state=State.PROCESSING, submitted_at=ago(20), processing_started_at=ago(20)
        )
    # The fourth slot: a task that finished 10 s ago (3 s of processing), the queued one's slot.
    Task.objects.filter(pk=finished.pk).update(
        state=State.COMPLETED,
        submitted_at=ago(15),
        upstream_processed_at=ago(13),
        upstream_completed_at=ago(10),
        processing_started_at=ago(13),
        processing_ends_at=ago(10),
    )
    Task.objects.filter(pk=queued.pk).update(
        state=State.QUEUED, submitted_at=ago(12), next_poll_at=ago(-60)
    )
    queued.refresh_from_db()
    durations = planning.durations_for(queued)
    assert durations.samples == pytest.approx((3.0,), abs=0.01)

    planning.replan_queued(studio, durations)

    queued.refresh_from_db()
    # Started when the finished task freed its slot, 10 s ago (not when it was sent, 12 s ago);
    # the first check after that has passed, and the poll stays due then (it is not put off).
    expected = ago(10).timestamp() + poll_planner.first_check(durations)
    assert queued.next_poll_at.timestamp() == pytest.approx(expected, abs=0.1)
    assert queued.next_poll_at < timezone.now()


def whole_second(moment):
    return moment.replace(microsecond=0)


def processing(task, *, created, processed) -> picwish.Polled:
    """PicWish's answer that `task` is processing, with its whole-second stamps."""
    return picwish.Polled(
        task_id="remote",
        state=State.PROCESSING,
        state_detail="Processing",
        progress=10,
        return_type=1,
        created_at=whole_second(created),
        processed_at=whole_second(processed),
        completed_at=None,
        image=None,
        image_width=None,
        image_height=None,
        raw="{}",
    )


def test_a_task_started_in_the_second_it_arrived_started_when_it_was_sent(studio, alice):
    *running, task = scale_tasks(studio, alice, 5)
    for ahead in running:  # the replay believes every slot taken: PicWish's stamps say otherwise
        Task.objects.filter(pk=ahead.pk).update(
            state=State.PROCESSING, submitted_at=ago(6), processing_started_at=ago(6)
        )
    sent = ago(4).replace(microsecond=700_000)  # late in its second: the middle would be off
    Task.objects.filter(pk=task.pk).update(state=State.QUEUED, submitted_at=sent)
    task.refresh_from_db()

    times = planning.processing_times(task, processing(task, created=sent, processed=sent))

    assert times["processing_started_at"] == sent


def test_a_queued_task_started_when_the_slot_it_took_freed(studio, alice):
    *running, finished, queued = scale_tasks(studio, alice, 5)
    for task in running:
        Task.objects.filter(pk=task.pk).update(
            state=State.PROCESSING, submitted_at=ago(20), processing_started_at=ago(20)
        )
    freed = ago(6).replace(microsecond=200_000)
    Task.objects.filter(pk=finished.pk).update(
        state=State.COMPLETED,
        submitted_at=ago(15),
        upstream_processed_at=whole_second(ago(15)),
        upstream_completed_at=whole_second(freed),
        processing_started_at=ago(15),
        processing_ends_at=freed,
    )
    sent = ago(12)
    Task.objects.filter(pk=queued.pk).update(state=State.QUEUED, submitted_at=sent)
    queued.refresh_from_db()

    times = planning.processing_times(queued, processing(queued, created=sent, processed=freed))

    assert times["processing_started_at"].timestamp() == pytest.approx(freed.timestamp(), abs=0.01)
