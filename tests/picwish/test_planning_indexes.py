"""The poll planner's queries read their partial indexes, so that they cost the same however long
a team's history (PostgreSQL only: SQLite has no EXPLAIN worth checking here).

The team has a history of a few thousand finished tasks of several operations (analysed), and
sequential scans are switched off for each plan, so the plan shows the index that suits the
query best among those that can serve it: the tests check that the planner's indexes match its
queries (condition, columns and order), not the cost estimates of a small table.
`make bench-poller BENCH_ARGS=--planning-cost` shows the plans and times at a million tasks.
"""

import re
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from restorations.jobs.models import Engine, Task
from restorations.jobs.operations import Operation
from restorations.jobs.states import State
from restorations.picwish import planning
from tests.factories import plan, scale_tasks

pytestmark = pytest.mark.django_db
HISTORY = 1000


@pytest.fixture(autouse=True)
def postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the planner's indexes are checked on PostgreSQL (set DATABASE_URL)")


@pytest.fixture
def history(studio, alice):
    """HISTORY finished PicWish tasks of the team, one finishing every 30 s, operations in
    turn, and a few in flight."""
    [task] = scale_tasks(studio, alice, 1)
    now = timezone.now()
    operations = list(Operation)
    finished = []
    for n in range(HISTORY):
        ends = now - timedelta(seconds=30 * (n + 1))
        finished.append(
            Task(
                upload=task.upload,
                team=studio,
                operation=operations[n % len(operations)],
                engine=Engine.PICWISH,
                state=State.COMPLETED,
                submitted_at=ends - timedelta(seconds=9),
                upstream_completed_at=ends.replace(microsecond=0),
                processing_started_at=ends - timedelta(seconds=6),
                processing_ends_at=ends,
            )
        )
    Task.objects.bulk_create(finished)
    Task.objects.filter(pk=task.pk).update(
        state=State.PROCESSING, submitted_at=now, processing_started_at=now
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE jobs_task")
    return studio


def recent_one_operation(team):
    return planning.recently_finished(team, "scale").values_list(
        "processing_started_at", "processing_ends_at"
    )[: planning.RECENT]


def recent_all_operations(team):
    return planning.recently_finished(team).values_list(
        "processing_started_at", "processing_ends_at"
    )[: planning.RECENT]


def finished_since(team):
    since = timezone.now() - timedelta(minutes=1)
    return planning.finished_since(team, since).values_list(*planning.REPLAY_FIELDS)[
        : planning.QUEUE_REPLAY_LIMIT
    ]


def held_by_picwish(team):
    return planning.held_by_picwish(team).values_list(*planning.REPLAY_FIELDS)[
        : planning.QUEUE_REPLAY_LIMIT
    ]


def in_flight_counted(team):
    return planning.in_flight(team).order_by().values("pk")  # what .count() counts


@pytest.mark.parametrize(
    ("query", "index"),
    [
        (recent_one_operation, "task_finished_op_recent"),
        (recent_all_operations, "task_finished_recent"),
        (finished_since, "task_finished_recent"),
        (held_by_picwish, "task_in_flight"),
        (in_flight_counted, "task_in_flight"),
    ],
)
def test_each_planning_query_reads_its_index_in_order(history, query, index):
    explained = plan(query(history))

    assert re.search(rf"Index (Only )?Scan (Backward )?using {index} on jobs_task", explained), (
        explained
    )
    assert "Sort" not in explained, explained  # the index gives the order: no top-N sort
