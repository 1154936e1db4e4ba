"""The poll planner learns from a team's finished tasks what their reports meant."""

import time
from dataclasses import replace
from datetime import timedelta

import pytest
from django.utils import timezone

from restorations.jobs.models import Task
from restorations.jobs.states import State
from restorations.picwish import planner as poll_planner
from restorations.picwish import planning
from tests.factories import scale_tasks
from tests.picwish.test_replan import ago, processing

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("planned_picwish")]


def finish(task, *, started_ago: float, took: float, reports: list[tuple[float, int, int]]):
    """Mark `task` finished by PicWish, with the reports its polls saw (seconds after its
    start, state, progress)."""
    start = ago(started_ago)
    Task.objects.filter(pk=task.pk).update(
        state=State.COMPLETED,
        submitted_at=start,
        upstream_processed_at=start,
        upstream_completed_at=start + timedelta(seconds=took),
        processing_started_at=start,
        processing_ends_at=start + timedelta(seconds=took),
        progress_seen=[
            [start.timestamp() + at, state, progress] for at, state, progress in reports
        ],
    )


def test_a_poll_of_a_processing_task_keeps_its_report_and_a_final_one_does_not(studio, alice):
    (task,) = scale_tasks(studio, alice, 1)
    sent = ago(3)
    Task.objects.filter(pk=task.pk).update(state=State.PROCESSING, submitted_at=sent)
    task.refresh_from_db()

    before = time.time()
    fields = planning.processing_times(task, processing(task, created=sent, processed=sent))

    (report,) = fields["progress_seen"]
    assert before <= report[0] <= time.time()
    assert report[1:] == [State.PROCESSING, 10]
    done = replace(
        processing(task, created=sent, processed=sent),
        state=State.COMPLETED,
        completed_at=timezone.now(),
    )
    assert "progress_seen" not in planning.processing_times(task, done)


def test_finished_tasks_reports_become_shares_of_their_processing_time(studio, alice):
    first, second, task = scale_tasks(studio, alice, 3)
    finish(
        first, started_ago=20, took=8, reports=[(2, State.PREPARING, 5), (6, State.PUBLISHING, 90)]
    )
    finish(second, started_ago=10, took=4, reports=[(1, State.PROCESSING, 12)])

    durations = planning.durations_for(task)

    assert sorted(durations.samples) == pytest.approx([4.0, 8.0])
    seen = sorted((s.stage, s.progress, round(s.share, 3), s.margin) for s in durations.seen)
    stage = poll_planner.stage_of
    error = poll_planner.SHARE_ERROR
    assert seen == [
        (stage(State.PREPARING), 5, 0.25, pytest.approx(error / 8)),
        (stage(State.PROCESSING), 12, 0.25, pytest.approx(error / 4)),
        (stage(State.PUBLISHING), 90, 0.75, pytest.approx(error / 8)),
    ]


def test_a_low_progress_that_finished_tasks_reached_late_says_the_end_is_near(studio, alice):
    *done, task = scale_tasks(studio, alice, 7)
    # Progress crept to 15 % and jumped at the end: 10 % came at two thirds of each task.
    for n, finished in enumerate(done):
        took = 4.0 + n * 0.5
        finish(
            finished,
            started_ago=60 - n * 5,
            took=took,
            reports=[(took * 2 / 3, State.PROCESSING, 10)],
        )
    started = ago(4)
    Task.objects.filter(pk=task.pk).update(
        state=State.PROCESSING, submitted_at=started, processing_started_at=started
    )
    task.refresh_from_db()
    polled = processing(task, created=started, processed=started)  # progress 10, 4 s in

    delay = planning.next_poll_delay(task, polled)

    # Read as linear, 10 % after 4 s would mean 36 s to go; learned, about 2 s.
    assert delay == pytest.approx(2.0 + poll_planner.AFTER_ETA, abs=0.5)
