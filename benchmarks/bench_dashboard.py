"""Benchmark of the dashboard's pages on a large PostgreSQL database: `make bench-dashboard`.

Fills a database of its own (next to DATABASE_URL's, which must be PostgreSQL) with 100,000
tasks across 50 teams, 1,000 of them in flight (20 per team), and another with 1,000 tasks in
one team (20 in flight), so that every page shows as many rows in both; then
requests each page through Django's test client as a signed-in member (no network, so the
figures are the view and its queries) and prints per page: p50 and p95 latency, SQL queries per
request, and the ratio of the large database's p50 to the small one's. Targets: at most 10
queries per request, the same number whatever the page size, and every ratio at most 1.3.
The ZIP targets are measured by `make bench-zip`.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres make bench-dashboard
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_poller import derived_database, percentile, recreate_database  # noqa: E402

TEAMS = 50
IN_FLIGHT = 1_000
PHOTOS_PER_BATCH = 20
QUERY_TARGET = 10
RATIO_TARGET = 1.3


def child(tasks: int, teams: int, repeats: int) -> None:
    """In a Django process on the filled database's DATABASE_URL: fill it, print the figures."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    import django

    django.setup()
    fill(tasks, teams)
    print(json.dumps(measure(repeats)))


def fill(count: int, teams: int) -> None:
    import random
    from datetime import timedelta

    from django.db import connection, transaction
    from django.utils import timezone

    from restorations.accounts.models import User
    from restorations.jobs.models import Batch, Engine, Task, Upload
    from restorations.jobs.operations import Operation
    from restorations.jobs.states import State

    rng = random.Random(7)
    now = timezone.now()
    per_team = count // teams
    in_flight = IN_FLIGHT // TEAMS
    final_states = (
        [State.COMPLETED] * 85
        + [State.FAILED, State.TIMED_OUT, State.INVALID_IMAGE, State.CONTENT_UNSUITABLE] * 2
        + [State.REFUSED, State.SERVICE_ERROR]
        + [State.CANCELED] * 5
    )
    live_states = [State.WAITING_TO_SEND, State.QUEUED, State.PROCESSING]
    operations = list(Operation.values)
    for t in range(teams):
        user = User.objects.create_user(f"member{t:02}", password="bench pass phrase")
        team = user.personal_team()
        with transaction.atomic():
            batches = Batch.objects.bulk_create(
                Batch(team=team, created_by=user, operation=rng.choice(operations))
                for _ in range(-(-per_team // PHOTOS_PER_BATCH))
            )
            uploads = Upload.objects.bulk_create(
                (
                    Upload(
                        team=team,
                        uploaded_by=user,
                        file=f"originals/{team.public_id}/{n}.jpg",
                        original_name=f"IMG_{n:05}.jpg" if n % 3 else f"Family album {n}.jpg",
                        sha256=f"{n:064x}",
                        bytes=800_000,
                        width=1600,
                        height=1200,
                        format="JPEG",
                    )
                    for n in range(per_team)
                ),
                batch_size=2000,
            )
            rows = []
            for n, upload in enumerate(uploads):
                age = timedelta(minutes=(per_team - n) * 30)
                state = rng.choice(live_states) if n >= per_team - in_flight else None
                state = state if state is not None else rng.choice(final_states)
                done = state == State.COMPLETED
                started = now - age + timedelta(seconds=5)
                rows.append(
                    Task(
                        upload=upload,
                        team=team,
                        created_by=user,
                        batch=batches[n // PHOTOS_PER_BATCH],
                        operation=batches[n // PHOTOS_PER_BATCH].operation,
                        engine=Engine.PICWISH,
                        state=state,
                        progress=100 if done else 40 if state == State.PROCESSING else 0,
                        submitted_at=None if state == State.WAITING_TO_SEND else started,
                        processing_started_at=started
                        if state == State.PROCESSING or state < 0 or done
                        else None,
                        processing_ends_at=started + timedelta(seconds=5) if done else None,
                        upstream_completed_at=started + timedelta(seconds=5) if done else None,
                        finished_at=started + timedelta(seconds=7) if state < 0 or done else None,
                        next_poll_at=None if state < 0 or done else now,
                    )
                )
            Task.objects.bulk_create(rows, batch_size=2000)
            # Spread over time as they were uploaded (auto_now_add stamped them all now).
            with connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE jobs_task SET created_at = %s - (u.n * interval '30 minutes') "
                    "FROM (SELECT id, %s - row_number() OVER (ORDER BY id) AS n FROM jobs_task "
                    "WHERE team_id = %s) u WHERE jobs_task.id = u.id",
                    [now, per_team, team.pk],
                )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def measure(repeats: int) -> dict:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from restorations.accounts.models import User
    from restorations.jobs import listing
    from restorations.jobs.models import Task

    user = User.objects.get(username="member00")
    team = user.personal_team()
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    tasks = Task.objects.filter(team=team)
    deep = tasks.order_by("-created_at", "-pk")[500]  # the same depth in both databases
    a_batch = tasks.order_by("-created_at").first().batch
    flying = list(tasks.active().order_by("-created_at")[:50])
    done = tasks.filter(state=1).order_by("-created_at").first()
    base = reverse("jobs:task_list")
    pages = {
        "list, first page": base,
        "list, deep page": f"{base}?older={listing.encode_cursor(deep)}",
        **{f"list, group {g}": f"{base}?group={g}" for g in listing.states.Group.values},
        "list, operation": f"{base}?operation=scale",
        "list, batch": f"{base}?batch={a_batch.public_id}",
        "list, search": f"{base}?q=album",
        "batch page": reverse("jobs:batch_detail", args=[a_batch.public_id]),
        "task detail": reverse("jobs:task_detail", args=[done.public_id]),
        "live update (50 in flight)": reverse("jobs:task_live")
        + "?ids="
        + ",".join(str(t.public_id) for t in flying),
        "live update of a batch page": reverse("jobs:task_live")
        + f"?batch={a_batch.public_id}&ids="
        + ",".join(str(t.public_id) for t in a_batch.tasks.all()),
    }
    figures = {}
    for name, url in pages.items():
        client.get(url)  # warm: the first request of a page compiles its template
        times, queries = [], []
        for _ in range(repeats):
            with CaptureQueriesContext(connection) as captured:
                start = time.perf_counter()
                response = client.get(url)
                times.append(time.perf_counter() - start)
            assert response.status_code == 200, (name, response.status_code)
            queries.append(len(captured))
        figures[name] = {
            "p50_ms": percentile(times, 0.5) * 1000,
            "p95_ms": percentile(times, 0.95) * 1000,
            "queries": max(queries),
        }
    return figures


def run_child(url: str, tasks: int, teams: int, repeats: int) -> dict:
    recreate_database(url)
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_DEBUG": "false", "PICWISH_API_KEY": "bench"}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True
    )
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(tasks), "--teams", str(teams)]
        + ["--repeats", str(repeats)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--repeats", type=int, default=40)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--teams", type=int, default=TEAMS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.teams, args.repeats)
        return
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        raise SystemExit(
            "Set DATABASE_URL to a PostgreSQL server (the database is made next to it)"
        )
    started = time.monotonic()
    large = run_child(derived_database(url, "dashboard_large"), args.tasks, TEAMS, args.repeats)
    small = run_child(derived_database(url, "dashboard_small"), args.small, 1, args.repeats)
    print(
        f"{args.tasks:,} tasks in {TEAMS} teams against {args.small:,} in one, {args.repeats} "
        f"requests per page ({time.monotonic() - started:.0f} s with the filling)"
    )
    print(f"{'page':<30}{'p50 / p95 (ms)':>18}{'queries':>9}{'small p50':>11}{'ratio':>7}")
    ok = True
    for name, big in large.items():
        little = small[name]
        ratio = big["p50_ms"] / little["p50_ms"]
        holds = big["queries"] <= QUERY_TARGET and little["queries"] == big["queries"]
        holds &= ratio <= RATIO_TARGET
        ok &= holds
        print(
            f"{name:<30}{big['p50_ms']:8.1f} / {big['p95_ms']:6.1f}{big['queries']:>9}"
            f"{little['p50_ms']:>9.1f} ms{ratio:>7.2f}{'' if holds else '  FAIL'}"
        )
    print(
        f"Targets: at most {QUERY_TARGET} queries, the same on both, ratio at most {RATIO_TARGET}: "
        + ("all hold." if ok else "some do not hold.")
    )


if __name__ == "__main__":
    main()
