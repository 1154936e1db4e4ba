"""Where each photo in flight stands: its place in the queue and when it will likely be done."""

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from restorations.jobs import estimates, local_runs
from restorations.jobs.estimates import Outlook
from restorations.jobs.models import Engine, Task
from restorations.jobs.states import State
from tests.factories import photo_bytes, scale_tasks, stored_task

pytestmark = pytest.mark.django_db


def ago(seconds: float):
    return timezone.now() - timedelta(seconds=seconds)


def left(outlook: Outlook) -> float:
    return outlook.done_at.timestamp() - time.time()


@pytest.mark.usefixtures("planned_picwish")
def test_picwish_photos_follow_the_planner_the_queue_replay_and_the_rate_limiter(studio, alice):
    finished, a, b, *waiting = scale_tasks(studio, alice, 7)
    # One finished task: 3 s of processing, its result saved 3 s after PicWish's end.
    Task.objects.filter(pk=finished.pk).update(
        state=State.COMPLETED,
        submitted_at=ago(14),
        upstream_completed_at=ago(10),
        processing_started_at=ago(13),
        processing_ends_at=ago(10),
        finished_at=ago(7),
    )
    # Two processing: one the planner expects to end in 4 s, one it has no end for yet.
    Task.objects.filter(pk=a.pk).update(
        state=State.PROCESSING,
        submitted_at=ago(2),
        processing_started_at=ago(2),
        processing_ends_at=ago(-4),
    )
    Task.objects.filter(pk=b.pk).update(
        state=State.PROCESSING, submitted_at=ago(1), processing_started_at=ago(1)
    )
    Task.objects.filter(pk__in=[t.pk for t in waiting]).update(next_poll_at=timezone.now())

    found = estimates.outlooks(Task.objects.filter(team=studio))

    assert finished.pk not in found
    assert found[a.pk].ahead is None and left(found[a.pk]) == pytest.approx(4 + 3, abs=0.3)
    # No end yet: the operation's usual time (3 s, the one measured) after its start.
    assert left(found[b.pk]) == pytest.approx(2 + 3, abs=0.3)
    # Four slots: two free ones take the first two sends (one rate-limiter slot apart), the
    # next starts when b ends (in 2 s), the last when the first send ends.
    assert [found[t.pk].ahead for t in waiting] == [0, 1, 2, 3]
    slot = 1.05 / 2
    expected = [slot + 3, 2 * slot + 3, 2 + 3, slot + 3 + 3]
    assert [left(found[t.pk]) for t in waiting] == pytest.approx([e + 3 for e in expected], abs=0.3)


def test_picwish_photos_without_a_key_to_send_them_have_no_finish_time(settings, studio, alice):
    settings.PICWISH_API_KEY = ""
    tasks = scale_tasks(studio, alice, 2)
    Task.objects.filter(pk__in=[t.pk for t in tasks]).update(
        engine=Engine.PICWISH, state=State.WAITING_TO_SEND
    )

    found = estimates.outlooks(Task.objects.filter(team=studio))

    assert [found[t.pk] for t in tasks] == [Outlook(0, None), Outlook(1, None)]
    assert estimates.describe(found[tasks[1].pk]) == (
        "1 photo ahead · waiting for the team's PicWish key"
    )


def test_local_photos_queue_across_teams_and_take_the_measured_seconds_per_megapixel(
    settings, studio, alice, bob
):
    settings.PICWISH_API_KEY = ""
    small = photo_bytes(200, 100)  # 0.02 megapixels
    large = photo_bytes(400, 200)  # 0.08 megapixels
    # One finished run: 0.02 MP in 2 s, that is 100 s per megapixel, and its result stored
    # 0.5 s after the engine's end.
    ran = stored_task(studio, alice, data=small)
    Task.objects.filter(pk=ran.pk).update(
        state=State.COMPLETED,
        processing_started_at=ago(12),
        processing_ends_at=ago(10),
        finished_at=ago(9.5),
    )
    running = stored_task(studio, alice, data=small)
    Task.objects.filter(pk=running.pk).update(
        state=State.PROCESSING, processing_started_at=ago(1), progress=0
    )
    other_team = stored_task(bob.personal_team(), bob, data=small)
    mine = stored_task(studio, alice, data=large)
    assert {t.engine for t in (running, other_team, mine)} == {Engine.LOCAL}

    found = estimates.outlooks(Task.objects.filter(team=studio))

    assert other_team.pk not in found  # only the rows asked for, but queued behind it
    assert found[running.pk].ahead is None
    assert left(found[running.pk]) == pytest.approx(1 + 0.5, abs=0.2)
    # Two workers: the other team's photo starts now, then mine when the running one is stored.
    assert found[mine.pk].ahead == 1
    assert left(found[mine.pk]) == pytest.approx(1.5 + 8 + 0.5, abs=0.2)


def test_a_local_run_that_reported_a_tenth_of_the_work_predicts_its_own_end(
    settings, studio, alice
):
    settings.PICWISH_API_KEY = ""
    task = stored_task(studio, alice)
    Task.objects.filter(pk=task.pk).update(
        state=State.PROCESSING, processing_started_at=ago(3), progress=25
    )

    found = estimates.outlooks([Task.objects.get(pk=task.pk)])

    # 3 s for a quarter: 9 s more, then the assumed time to store the result (none measured).
    assert left(found[task.pk]) == pytest.approx(9 + estimates.LOCAL_SAVING_SECONDS, abs=0.2)


def test_a_local_run_records_when_it_started_and_ended(settings, studio, alice):
    settings.PICWISH_API_KEY = ""
    task = stored_task(studio, alice)
    before = timezone.now()

    local_runs.run(task.pk)

    task.refresh_from_db()
    assert task.state == State.COMPLETED
    assert before <= task.processing_started_at <= task.processing_ends_at <= timezone.now()


@pytest.mark.usefixtures("planned_picwish")
def test_outlooks_take_the_same_queries_for_five_rows_and_for_fifty(
    studio, alice, django_assert_max_num_queries
):
    tasks = scale_tasks(studio, alice, 50)
    Task.objects.filter(pk__in=[t.pk for t in tasks[:20]]).update(
        state=State.PROCESSING, submitted_at=ago(2), processing_started_at=ago(2)
    )
    counts = []
    for rows in (tasks[:5], tasks[:25], tasks):
        with django_assert_max_num_queries(10) as captured:
            found = estimates.outlooks(Task.objects.filter(pk__in=[t.pk for t in rows]))
        assert len(found) == len(rows)
        counts.append(len(captured))
    assert counts[0] == counts[1] == counts[2]


@pytest.mark.parametrize(
    ("ahead", "seconds", "words"),
    [
        (None, None, "waiting for the team's PicWish key"),
        (None, 1, "done any moment now"),
        (0, 40.4, "next in line · done in about 40 s"),
        (3, 130.4, "3 photos ahead · done in about 3 min"),
        (None, 7201, "done in about 2 h 1 min"),
    ],
)
def test_outlooks_in_words(ahead, seconds, words):
    now = timezone.now()
    done_at = None if seconds is None else now + timedelta(seconds=seconds)
    assert estimates.describe(Outlook(ahead, done_at), now=now.timestamp()) == words


def test_a_batch_is_done_with_its_last_photo_and_waits_with_any_that_waits_for_a_key():
    now = time.time()
    soon, later = (Outlook(0, datetime.fromtimestamp(now + s, tz=UTC)) for s in (30.4, 200.4))
    assert estimates.describe_batch([soon, None, later], now) == "All photos done in about 4 min"
    assert estimates.describe_batch([soon, Outlook(2, None)], now) == (
        "Waiting for the team's PicWish key"
    )
    assert estimates.describe_batch([None], now) == ""  # nothing in flight any more
