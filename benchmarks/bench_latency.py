"""How soon a built-in engine photo starts and ends after its upload: `make bench-latency`.

For each setup it starts a worker and beat as separate processes, from the Procfile's own
command lines through honcho as `make run` does, then uploads photos one at a time on an
otherwise idle machine with `manage.py restore PHOTO --user bench --json` (run in-process, the
command's own code) and waits for each to finish before the next. The photos are real
photographs shipped by scikit-image (`skimage.data`). Per photo it reads, from the task's
timeline, the time from the upload (Task.created_at) to:

- processing: the engine started (the event whose to_state is 4; a local task is created
  queued, and its one message to the engine's queue leaves when the upload commits);
- completed: the result was stored (the event whose to_state is 1);

and prints them per photo with the median and the maximum.

With --burst, it measures the estimates instead: each round uploads all the photos at once
(one `restore` of them all, one batch) and, every half second until all are done, reads the
outlook the pages would show of each photo in flight (`estimates.outlooks`: its place in the
queue and its expected finish), then prints how far those expected finishes were from the
actual ones (median and p90 of the absolute error, and the median signed error), for photos
still queued ("waiting") and being restored ("processing"). The photographs are enlarged
three times for it (BURST_SCALE, within old-photo repair's limits). The first round runs on a fresh
database, with nothing measured yet; the later ones on what the first taught.

Setups: "embedded", SQLite and the file-system broker in a temporary DESK_VAR_DIR (always), and
"redis", Redis and PostgreSQL, when CELERY_BROKER_URL is a Redis URL and DATABASE_URL a
PostgreSQL one. The redis setup uses a database of its own on that server (created for the run
and dropped after it) and purges the broker's queues: give it a Redis database of its own.

    python benchmarks/bench_latency.py [--photos 10] [--gap 1.0] [--setup embedded|redis]
    python benchmarks/bench_latency.py --burst [--rounds 2] [--photos 10]
"""

import argparse
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
USERNAME = "bench"
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera")  # skimage.data photographs
# A database of its own on the given server, removed again after the run.
BENCH_DATABASE = f"desk_bench_latency_{os.getpid()}"
FIELDS = ("processing", "completed")
WIDTHS = (20, 19)
# With --burst the photographs are enlarged this many times (1 to 2.4 megapixels each), so
# that photos queue behind each other for seconds, as a camera's would.
BURST_SCALE = 3


# --- The orchestrator: one run per setup, each with its own processes --------------------------


class Run:
    def __init__(self, setup: str, args):
        self.setup, self.args = setup, args
        self.var = Path(tempfile.mkdtemp(prefix=f"desk-bench-latency-{setup}-"))
        self.honcho: subprocess.Popen | None = None

    def env(self) -> dict:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("DJANGO_", "DESK_", "PICWISH_", "DATABASE_", "CELERY_"))
        }
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.local",
            DJANGO_DEBUG="false",
            DJANGO_LOG_LEVEL="WARNING",
            DESK_VAR_DIR=str(self.var),
            PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        )
        if self.setup == "redis":
            env["CELERY_BROKER_URL"] = os.environ["CELERY_BROKER_URL"]
            env["DATABASE_URL"] = (
                os.environ["DATABASE_URL"].rsplit("/", 1)[0] + f"/{BENCH_DATABASE}"
            )
        return env

    def python(self, *command: str) -> str:
        done = subprocess.run(
            [PYTHON, *command], cwd=ROOT, env=self.env(), capture_output=True, text=True
        )
        if done.returncode:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
        return done.stdout

    def prepare(self) -> None:
        env = self.env()
        if self.setup == "redis":
            self.psql(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
            self.psql(f"CREATE DATABASE {BENCH_DATABASE}")
            subprocess.run(
                [str(BIN / "celery"), "-A", "config", "purge", "-f"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                check=True,
            )
        self.python("manage.py", "migrate", "--no-input", "-v0")

    def psql(self, sql: str) -> None:
        admin = self.env()["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
        subprocess.run(["psql", admin, "-qc", sql], check=True, capture_output=True)

    def start(self) -> None:
        """The Procfile's worker and beat, started by honcho as `make run` starts them."""
        log = open(self.var / "processes.log", "wb")  # noqa: SIM115 (the processes write it)
        self.honcho = subprocess.Popen(
            [str(BIN / "honcho"), "--env", "/dev/null", "--no-colour", "start", "worker", "beat"],
            cwd=ROOT,
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while b" ready." not in (self.var / "processes.log").read_bytes():
            if self.honcho.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the worker did not start:\n{self.logs()}")
            time.sleep(0.2)
        time.sleep(3)  # beat is ticking and the machine is idle again

    def stop(self) -> None:
        if self.honcho and self.honcho.poll() is None:
            os.killpg(self.honcho.pid, signal.SIGINT)  # Ctrl-C, as at the end of `make run`
            try:
                self.honcho.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.honcho.pid, signal.SIGKILL)
                self.honcho.wait()

    def logs(self) -> str:
        return (self.var / "processes.log").read_text(errors="replace")[-3000:]

    def run(self) -> list[dict]:
        self.prepare()
        try:
            self.start()
            out = self.python(
                __file__,
                "measure",
                "--photos",
                str(self.args.photos),
                "--gap",
                str(self.args.gap),
                "--operation",
                self.args.operation,
                "--seed",
                str(self.args.seed),
                "--rounds",
                str(self.args.rounds if self.args.burst else 0),
            )
        finally:
            self.stop()
            if not getattr(self.args, "keep", False):
                shutil.rmtree(self.var, ignore_errors=True)
            if self.setup == "redis":
                self.psql(f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def describe(setup: str) -> str:
    if setup == "embedded":
        return "embedded default: SQLite, file-system broker"
    broker = urlsplit(os.environ["CELERY_BROKER_URL"])
    where = f"{broker.hostname}:{broker.port or 6379}{broker.path}"  # without any password
    return f"Redis ({where}) and PostgreSQL"


def report(setup: str, rows: list[dict], args) -> None:
    if args.burst:
        report_estimates(setup, rows, args)
        return
    print(f"\n{describe(setup)}: {len(rows)} photos one at a time, {args.operation}")
    print(f"{'photo':<16}{'upload→processing':>20}{'upload→completed':>19}")
    for row in rows:
        cells = "".join(
            f"{_seconds(row.get(field)):>{width}}"
            for field, width in zip(FIELDS, WIDTHS, strict=True)
        )
        state = "" if row["state"] == 1 else f"  (ended in state {row['state']})"
        print(f"{row['photo']:<16}{cells}{state}")
    for name, pick in (("median", statistics.median), ("max", max)):
        cells = ""
        for field, width in zip(FIELDS, WIDTHS, strict=True):
            values = [row[field] for row in rows if row.get(field) is not None]
            cells += f"{_seconds(pick(values) if values else None):>{width}}"
        print(f"{name:<16}{cells}")


def report_estimates(setup: str, rows: list[dict], args) -> None:
    """Per round, the estimate errors in bench-poller's table (the same phases and figures)."""
    from bench_poller import show_estimates

    print(
        f"\n{describe(setup)}: {args.photos} photos at once (enlarged {BURST_SCALE}x), "
        f"{args.operation}, {args.rounds} rounds"
    )
    for n in sorted({row["round"] for row in rows}):
        errors = [tuple(e) for row in rows if row["round"] == n for e in row["errors"]]
        took = max(row["took"] for row in rows if row["round"] == n)
        show_estimates(
            f"Round {n}, the last photo done {took:.1f} s after the upload",
            {n: {"estimate_errors": errors}},
            every="every half second",
        )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=10, help="uploads per setup")
    parser.add_argument(
        "--gap", type=float, default=1.0, help="idle seconds between one photo's end and the next"
    )
    parser.add_argument("--operation", default="restoration-old-photo")
    parser.add_argument("--seed", type=int, default=1, help="draws the extra idle time")
    parser.add_argument(
        "--setup",
        action="append",
        choices=["embedded", "redis"],
        help="default: embedded, and redis when CELERY_BROKER_URL and DATABASE_URL name them",
    )
    parser.add_argument(
        "--burst", action="store_true", help="upload the photos at once; measure the estimates"
    )
    parser.add_argument("--rounds", type=int, default=2, help="with --burst: uploads in turn")
    parser.add_argument("--json", metavar="FILE", help="also write every row here")
    parser.add_argument(
        "--keep", action="store_true", help="keep each setup's temporary folder (and its logs)"
    )
    args = parser.parse_args()
    broker, database = os.environ.get("CELERY_BROKER_URL", ""), os.environ.get("DATABASE_URL", "")
    has_redis = broker.startswith(("redis://", "rediss://")) and database.startswith("postgres")
    setups = args.setup or (["embedded", "redis"] if has_redis else ["embedded"])
    if "redis" in setups and not has_redis:
        raise SystemExit(
            "--setup redis needs CELERY_BROKER_URL=redis://... and DATABASE_URL=postgres://..."
        )
    results = {}
    for setup in setups:
        results[setup] = Run(setup, args).run()
        report(setup, results[setup], args)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


# --- The Django side: uploads and timelines, run inside one setup's environment --------------


def measure(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", type=int, required=True)
    parser.add_argument("--gap", type=float, required=True)
    parser.add_argument("--operation", required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--rounds", type=int, required=True)
    args = parser.parse_args(argv)

    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from io import StringIO

    from django.conf import settings
    from django.core.management import call_command

    from restorations.accounts.models import User
    from restorations.jobs.models import Task
    from restorations.jobs.states import State

    if not User.objects.filter(username=USERNAME).exists():
        User.objects.create_user(USERNAME, password=None)
    folder = Path(settings.VAR_DIR) / "photos"
    folder.mkdir(exist_ok=True)
    if args.rounds:
        for n in range(1, args.rounds + 1):
            # Each photo a file of its own: the photographs in turn, each mirrored or turned
            # anew for each pass through them and each round.
            paths = [
                save_photo(PHOTOS[i % len(PHOTOS)], folder, BURST_SCALE, turn=n * 100 + i)
                for i in range(args.photos)
            ]
            burst(n, paths, args.operation)
        return
    paths = [save_photo(name, folder) for name in PHOTOS]
    rng = random.Random(args.seed)
    for n in range(args.photos):
        path = paths[n % len(paths)]
        out = StringIO()
        call_command(
            "restore", str(path), user=USERNAME, json=True, operation=args.operation, stdout=out
        )
        task = Task.objects.get(public_id=json.loads(out.getvalue().splitlines()[0])["id"])
        deadline = time.monotonic() + 300
        while not task.is_final and time.monotonic() < deadline:
            time.sleep(0.02)
            task.refresh_from_db()
        events = list(task.events.all())

        def after_upload(match, events=events, task=task):
            found = next((e for e in events if match(e)), None)
            return (found.created_at - task.created_at).total_seconds() if found else None

        row = {
            "photo": path.name,
            "state": task.state,
            "processing": after_upload(lambda e: e.to_state == State.PROCESSING),
            "completed": after_upload(lambda e: e.to_state == State.COMPLETED),
        }
        print(json.dumps(row), flush=True)
        time.sleep(args.gap + rng.uniform(0, 1))  # idle, at a random phase of any polling


def burst(round_number: int, paths: list[Path], operation: str) -> None:
    """Upload `paths` at once, sample the outlook of each photo in flight every half second
    until all are done, and print each photo's errors (expected minus actual finish)."""
    from io import StringIO

    from django.core.management import call_command

    from restorations.jobs import estimates
    from restorations.jobs.models import Task

    out = StringIO()
    call_command(
        "restore", *map(str, paths), user=USERNAME, json=True, operation=operation, stdout=out
    )
    ids = [json.loads(line)["id"] for line in out.getvalue().splitlines() if line.startswith("{")]
    pks = list(Task.objects.filter(public_id__in=ids).values_list("pk", flat=True))
    samples: dict[int, list[tuple[float | None, bool]]] = {pk: [] for pk in pks}
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        in_flight = list(
            Task.objects.filter(pk__in=pks).select_related("team", "upload").order_by("pk")
        )
        in_flight = [task for task in in_flight if not task.is_final]
        if not in_flight:
            break
        for pk, outlook in estimates.outlooks(in_flight).items():
            done_at = outlook.done_at.timestamp() if outlook.done_at else None
            samples[pk].append((done_at, outlook.ahead is not None))
        time.sleep(0.5)
    for task in Task.objects.filter(pk__in=pks).select_related("upload").order_by("pk"):
        finished = task.finished_at.timestamp() if task.finished_at else None
        errors = [
            ("waiting" if queued else "processing", done_at - finished)
            for done_at, queued in samples[task.pk]
            if done_at is not None and finished is not None
        ]
        row = {
            "round": round_number,
            "photo": task.upload.original_name,
            "state": task.state,
            "took": (task.finished_at - task.created_at).total_seconds() if finished else 0.0,
            "errors": errors,
        }
        print(json.dumps(row), flush=True)


# Ways to make another file of one photograph: mirrored, flipped or both.
TURNS = (None, Image.Transpose.FLIP_LEFT_RIGHT, Image.Transpose.FLIP_TOP_BOTTOM,
         Image.Transpose.ROTATE_180)  # fmt: skip


def save_photo(name: str, folder: Path, scale: int = 1, turn: int | None = None) -> Path:
    """The photograph, enlarged `scale` times (Lanczos) for work the size of a camera's; with
    `turn`, a file of its own (mirrored, flipped or turned, and one pixel changed)."""
    from skimage import data

    suffix = "" if scale == 1 else f"-x{scale}"
    suffix += "" if turn is None else f"-{turn}"
    path = folder / f"{name}{suffix}.png"
    image = Image.fromarray(getattr(data, name)())
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.LANCZOS)
    if turn is not None:
        if TURNS[turn % len(TURNS)] is not None:
            image = image.transpose(TURNS[turn % len(TURNS)])
        bands = len(image.getbands())
        image.putpixel((0, 0), turn % 256 if bands == 1 else (turn % 256,) * bands)
    image.save(path)
    return path


if __name__ == "__main__":
    if sys.argv[1:2] == ["measure"]:
        measure(sys.argv[2:])
    else:
        main()
