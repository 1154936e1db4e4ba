"""What the poll planner's database queries cost as a team's history grows, on PostgreSQL.

Run by `make bench-poller BENCH_ARGS=--planning-cost` in a database of its own (bench_poller.py
creates it empty and migrates it); by hand:

DATABASE_URL=postgres://.../empty_db python benchmarks/planning_cost.py --sizes 10000,1000000

Fills one team's history with finished PicWish tasks (SQL generate_series: operations, outcomes,
processing and queue times drawn from plausible distributions, finishing about every 30 s, so a
million tasks are a busy year), keeps a few tasks in flight, and prints for each size the median
time of every query planning.py runs per send and per poll, the median time of the planning
steps themselves (which run several of them), and each query's EXPLAIN. The newest 10,000 tasks
are the same rows at every size: the larger history is added before them, so every query has
the same answer at both sizes and only the history's size differs.
"""

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from restorations.accounts.models import User  # noqa: E402
from restorations.jobs.models import Engine, Task, Upload  # noqa: E402
from restorations.jobs.states import State  # noqa: E402
from restorations.picwish import client, planning  # noqa: E402

USERNAME = "history"
# Seconds between two finishes in the generated history: about 2,900 tasks a day.
SPACING = 30.0
# Share of each operation in the history, and its median processing time (seconds).
OPERATIONS = [
    ("scale", 0.45, 6.0),
    ("restoration-old-photo", 0.30, 10.0),
    ("colorization", 0.12, 6.0),
    ("scale-pro", 0.10, 12.0),
    ("correction", 0.03, 6.0),
]
# Held at PicWish while the queries run: processing, then queued (oldest first).
PROCESSING, QUEUED = 4, 8

# One row per task n (1 = the most recently finished). Each draw has its own random().
FILL = """
WITH draws AS (
    SELECT n, random() AS op, random() AS outcome, random() AS engine,
           random() AS u1, random() AS u2, random() AS wait, random() AS code
    FROM generate_series(%(first)s, %(last)s) AS n
), tasks AS (
    SELECT n, outcome, engine, code, OPERATION_DRAWN AS operation,
        -- log-normal processing times around each operation's median (sigma 0.35)
        exp(0.35 * sqrt(-2 * ln(1 - u1)) * cos(2 * pi() * u2)) AS spread,
        20 * wait ^ 3 AS queued_s,
        %(now)s::timestamptz - make_interval(secs => n * %(spacing)s) AS ends
    FROM draws
), timed AS (
    SELECT *, make_interval(secs => spread * OPERATION_MEDIAN) AS took FROM tasks
)
INSERT INTO jobs_task (
    public_id, upload_id, team_id, created_by_id, operation, options, engine, remote_task_id,
    state, state_detail, progress, upstream_created_at, upstream_processed_at,
    upstream_completed_at, processing_started_at, processing_ends_at, submitted_at,
    finished_at, deadline_at, next_poll_at, lease_expires_at, poll_count, attempts,
    fault_count, last_http_status, last_response, result, result_sha256, result_bytes,
    result_width, result_height, failure_code, failure_message, review_note, created_at,
    updated_at
)
SELECT
    gen_random_uuid(), %(upload)s, %(team)s, %(user)s, operation, '{}'::jsonb,
    CASE WHEN engine < 0.95 THEN 'picwish' ELSE 'local' END, gen_random_uuid()::text,
    CASE WHEN outcome < 0.85 THEN 1 WHEN outcome < 0.96
         THEN (ARRAY[-1, -8, -10, -14, -15])[1 + floor(code * 5)::int] ELSE -104 END,
    CASE WHEN outcome < 0.85 THEN 'Complete' WHEN outcome < 0.96 THEN 'Failed' ELSE '' END,
    CASE WHEN outcome < 0.85 THEN 100 ELSE 60 END,
    date_trunc('second', ends - took - make_interval(secs => queued_s)),
    date_trunc('second', ends - took),
    CASE WHEN outcome < 0.96 THEN date_trunc('second', ends) END,
    ends - took,
    CASE WHEN outcome < 0.96 THEN ends ELSE ends - took / 2 END,
    ends - took - make_interval(secs => queued_s + 0.3),
    ends + interval '1.5 seconds',
    ends - took - make_interval(secs => queued_s) + interval '20 minutes',
    NULL, NULL, 2, 1, 0, 200,
    '{"status":200,"message":"success","data":{"task_id":"' || gen_random_uuid()
        || '","state":1,"progress":100,"image":"https://example.invalid/results/'
        || md5(n::text) || '.jpg","created_at":1700000000,"processed_at":1700000001,'
        || '"completed_at":1700000007,"return_type":1}}',
    CASE WHEN outcome < 0.85 THEN 'results/history/' || n || '.jpg' ELSE '' END,
    CASE WHEN outcome < 0.85 THEN md5(n::text) || md5(n::text) ELSE '' END,
    CASE WHEN outcome < 0.85 THEN 400000 + n %% 300000 END,
    CASE WHEN outcome < 0.85 THEN 2048 END,
    CASE WHEN outcome < 0.85 THEN 1536 END,
    CASE WHEN outcome >= 0.85 AND outcome < 0.96 THEN -1 END,
    '', '',
    ends - took - make_interval(secs => queued_s + 0.5),
    ends + interval '1.5 seconds'
FROM timed
"""


def _operation_sql() -> str:
    """The operation drawn from `op` (uniform 0..1) with OPERATIONS' shares."""
    cases, cumulative = [], 0.0
    for name, share, _ in OPERATIONS[:-1]:
        cumulative += share
        cases.append(f"WHEN op < {cumulative:.4f} THEN '{name}'")
    return f"CASE {' '.join(cases)} ELSE '{OPERATIONS[-1][0]}' END"


def _median_sql() -> str:
    cases = " ".join(f"WHEN '{name}' THEN {median}" for name, _, median in OPERATIONS)
    return f"CASE operation {cases} END"


def history_owner() -> tuple[User, Upload]:
    user, _ = User.objects.get_or_create(username=USERNAME)
    team = user.personal_team()
    # The planner's queries never read uploads: one stands in for every task's original.
    upload = Upload.objects.filter(team=team).first() or Upload.objects.create(
        team=team,
        uploaded_by=user,
        file="originals/history/original.jpg",
        original_name="original.jpg",
        sha256="0" * 64,
        bytes=500_000,
        width=1024,
        height=768,
        format="JPEG",
    )
    return user, upload


def fill(user: User, upload: Upload, first: int, last: int, now) -> None:
    """Finished tasks `first`..`last` of the history (1 finished SPACING s before `now`)."""
    params = {
        "first": first,
        "last": last,
        "now": now,
        "spacing": SPACING,
        "upload": upload.pk,
        "team": user.personal_team().pk,
        "user": user.pk,
    }
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(%s)", [(first % 1000) / 1000])
        sql = FILL.replace("OPERATION_DRAWN", _operation_sql())
        cursor.execute(sql.replace("OPERATION_MEDIAN", _median_sql()), params)
        cursor.execute("ANALYZE jobs_task")


def in_flight(user: User, upload: Upload, now) -> list[Task]:
    """Tasks PicWish holds while the planner runs: PROCESSING started, QUEUED waiting."""
    team = user.personal_team()
    Task.objects.filter(team=team, state__gte=0, state__lt=State.WAITING_TO_SEND).exclude(
        state=State.COMPLETED
    ).delete()
    tasks = []
    for n in range(PROCESSING + QUEUED):
        sent = now - timedelta(seconds=12 - n)
        started = sent if n < PROCESSING else None
        tasks.append(
            Task.objects.create(
                upload=upload,
                team=team,
                created_by=user,
                operation="scale",
                engine=Engine.PICWISH,
                remote_task_id=f"held-{n}",
                state=State.PROCESSING if started else State.QUEUED,
                progress=40 if started else 0,
                submitted_at=sent,
                upstream_created_at=sent.replace(microsecond=0),
                upstream_processed_at=started.replace(microsecond=0) if started else None,
                processing_started_at=started,
                next_poll_at=now + timedelta(seconds=30),
                poll_count=1,
            )
        )
    return tasks


def polled(task: Task) -> client.Polled:
    """PicWish's answer that `task` started processing a second ago and is at 40 %."""
    started = (timezone.now() - timedelta(seconds=1)).replace(microsecond=0)
    return client.Polled(
        task_id=task.remote_task_id,
        state=State.PROCESSING,
        state_detail="Processing",
        progress=40,
        return_type=1,
        created_at=task.upstream_created_at,
        processed_at=started,
        completed_at=None,
        image=None,
        image_width=None,
        image_height=None,
        raw="{}",
    )


def queries(user: User, held: list[Task]) -> dict:
    """Every query planning.py runs per send and per poll, as querysets (name: queryset)."""
    team = user.personal_team()
    oldest = held[0].submitted_at
    named = {
        "recent processing, scale (45 % of tasks)": planning.recently_finished(team, "scale"),
        "recent processing, correction (3 %)": planning.recently_finished(team, "correction"),
        "recent processing, all operations": planning.recently_finished(team),
    }
    named = {
        name: qs.values_list("processing_started_at", "processing_ends_at")[: planning.RECENT]
        for name, qs in named.items()
    }
    named["queue replay: tasks PicWish holds"] = planning.held_by_picwish(team).values_list(
        *planning.REPLAY_FIELDS
    )[: planning.QUEUE_REPLAY_LIMIT]
    named["queue replay: tasks finished since"] = planning.finished_since(team, oldest).values_list(
        *planning.REPLAY_FIELDS
    )[: planning.QUEUE_REPLAY_LIMIT]
    runs = {name: (lambda qs=qs: list(qs.all()), qs) for name, qs in named.items()}
    # The dispatcher's send deadlines count them (EXPLAIN shows the rows counted).
    counted = planning.in_flight(team)
    runs["send deadlines: tasks PicWish holds, counted"] = (
        counted.count,
        counted.order_by().values("pk"),
    )
    return runs


def steps(user: User, held: list[Task]) -> dict:
    """The planning steps of one send and one poll, each running several of the queries."""
    team = user.personal_team()
    waiting = held[-1]
    # The costliest poll: the first that sees a queued task started (the replay places it).
    starting = held[PROCESSING]
    answer = polled(starting)
    return {
        "per send: first poll (replay, concurrency, durations)": lambda: planning.first_poll_at(
            waiting
        ),
        "per send: the dispatcher's send deadline (in flight counted)": lambda: (
            planning.in_flight(team).count(),
            planning.concurrency_for(team),
            planning.durations_for(waiting),
        ),
        "per poll: processing times and next poll": lambda: (
            planning.processing_times(starting, answer),
            planning.next_poll_delay(starting, answer),
        ),
        "per finish: re-plan the queued tasks": lambda: planning.replan_after_finish(held[0]),
    }


def median_ms(run, repeats: int) -> float:
    run()  # warm: the first run pays for parsing and cold pages
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def measure(user: User, upload: Upload, repeats: int, now) -> dict:
    held = in_flight(user, upload, now)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE jobs_task")
    figures, plans = {}, {}
    for name, (run, qs) in queries(user, held).items():
        figures[name] = median_ms(run, repeats)
        plans[name] = qs.explain()
    for name, run in steps(user, held).items():
        figures[name] = median_ms(run, repeats)
    return {"figures": figures, "plans": plans}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,1000000", help="finished tasks, ascending")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument(
        "--plans", action="store_true", help="print every EXPLAIN (default: the largest size's)"
    )
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("planning cost is measured on PostgreSQL: set DATABASE_URL")
    sizes = [int(size) for size in args.sizes.split(",")]
    user, upload = history_owner()
    now = timezone.now()
    results, done = {}, 0
    for size in sizes:
        started = time.monotonic()
        fill(user, upload, done + 1, size, now)
        done = size
        print(f"  {size:,} finished tasks in the team ({time.monotonic() - started:.0f} s to add)")
        results[size] = measure(user, upload, args.repeats, now)
    print(f"\nMedian of {args.repeats} runs (ms), one team's history of finished tasks")
    names = list(results[sizes[0]]["figures"])
    width = max(map(len, names))
    print("  " + " " * width + "".join(f"{size:>12,}" for size in sizes) + "       ratio")
    for name in names:
        cells = [results[size]["figures"][name] for size in sizes]
        print(
            f"  {name:<{width}}"
            + "".join(f"{cell:12.2f}" for cell in cells)
            + f"{cells[-1] / cells[0]:12.2f}"
        )
    shown = sizes if args.plans else sizes[-1:]
    for size in shown:
        print(f"\nEXPLAIN at {size:,} finished tasks")
        for name, plan in results[size]["plans"].items():
            print(f"  {name}")
            for line in plan.splitlines():
                print(f"      {line}")


if __name__ == "__main__":
    main()
