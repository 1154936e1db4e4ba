"""Benchmark of the PicWish pipeline against the emulator: `make bench-poller`.

Starts the PicWish emulator (QPS 2, 4 upstream slots, durations uniform 2-8 s, 20 % failures,
progress along the chosen curve), then pushes 40 photos through the real pipeline (separate
Celery beat and worker processes) and prints throughput, requests per task, 429s and
completion-detection lag. It does so once per seed (each seed draws other durations and
failures) and pools the runs, then runs the same workloads with the fixed 1-second poller and
prints the ratios; with several progress curves (--curves), all of that per curve, and a
summary of the curves against the targets.

Uses PostgreSQL and Redis when DATABASE_URL / CELERY_BROKER_URL are set, else SQLite and the
file-system broker in a temporary folder. Figures go to docs/benchmarks.md by hand.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emulator import timeline  # noqa: E402  (the curves as the emulator reports them)

PYTHON = sys.executable
CELERY = str(Path(PYTHON).with_name("celery"))
KEY = "bench-key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds} s")


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def derived_database(url: str, suffix: str) -> str:
    """A database of its own next to DATABASE_URL's: "<its name>_<suffix>", so that benchmarks
    started with different DATABASE_URLs never share one."""
    base, _, name = url.rpartition("/")
    return f"{base}/{name.split('?')[0] or 'desk_bench'}_{suffix}"


def recreate_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    for sql in (f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", f"CREATE DATABASE {name}"):
        subprocess.run(["psql", admin, "-qc", sql], check=True, capture_output=True)


def planning_cost(args) -> None:
    """--planning-cost: the planner's query times at growing histories (benchmarks/
    planning_cost.py), in a fresh database of its own."""
    base_db = os.environ.get("DATABASE_URL", "")
    if not base_db.startswith("postgres"):
        raise SystemExit("--planning-cost needs PostgreSQL: set DATABASE_URL")
    env = dict(os.environ, DATABASE_URL=derived_database(base_db, "planning"))
    env.update(DJANGO_SETTINGS_MODULE="config.settings.local", DJANGO_LOG_LEVEL="WARNING")
    env["DESK_VAR_DIR"] = tempfile.mkdtemp(prefix="desk-bench-planning-")
    recreate_database(env["DATABASE_URL"])
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True
    )
    print(f"Planning cost: one team's history of finished tasks, sizes {args.planning_sizes}")
    subprocess.run(
        [
            PYTHON,
            "benchmarks/planning_cost.py",
            "--sizes",
            args.planning_sizes,
            "--repeats",
            args.planning_repeats,
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )


def since_warm_up(counters: dict, before: dict) -> dict:
    """The emulator's request counters less those of the warm-up (`before`)."""
    if not before:
        return counters
    counters = dict(counters)
    for kind in ("create", "poll"):
        counters[kind] = {
            key: count - before.get(kind, {}).get(key, 0)
            for key, count in counters.get(kind, {}).items()
        }
    counters["rate_limited"] = counters.get("rate_limited", 0) - before.get("rate_limited", 0)
    return counters


class Run:
    """One workload through the pipeline, in its own database, broker and folders."""

    def __init__(self, args, label: str, poll_interval: float | None, seed: int, curve: str):
        self.args, self.poll_interval, self.seed, self.curve = args, poll_interval, seed, curve
        self.label = f"{label}_{curve}_{seed}"
        self.var = Path(tempfile.mkdtemp(prefix=f"desk-bench-{self.label}-"))
        self.processes: list[subprocess.Popen] = []

    def env(self) -> dict:
        env = dict(os.environ)
        base_db = os.environ.get("DATABASE_URL", "")
        if base_db.startswith("postgres"):
            env["DATABASE_URL"] = derived_database(base_db, self.label)
        else:
            env["DATABASE_URL"] = f"sqlite:///{self.var / 'db.sqlite3'}"
        broker = os.environ.get("CELERY_BROKER_URL", "")
        env["CELERY_BROKER_URL"] = broker if broker.startswith("redis") else "filesystem://"
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.local",
            DJANGO_DEBUG="false",
            DESK_VAR_DIR=str(self.var),
            DJANGO_LOG_LEVEL="WARNING",
            PICWISH_API_KEY=KEY,
            PICWISH_BASE_URL=self.emulator_url,
            PICWISH_QPS=str(self.args.qps),
        )
        if self.poll_interval:
            env["PICWISH_POLL_INTERVAL"] = str(self.poll_interval)
        return env

    def start(self, *command, log: str) -> None:
        out = open(self.var / f"{log}.log", "w")  # noqa: SIM115 (kept open for the process)
        self.processes.append(
            subprocess.Popen(
                command, cwd=ROOT, env=self.env(), stdout=out, stderr=out, start_new_session=True
            )
        )

    def manage(self, *command) -> str:
        return self._python("manage.py", *command)

    def pipeline(self, *command) -> str:
        return self._python("benchmarks/pipeline.py", *command)

    def _python(self, *command) -> str:
        done = subprocess.run(
            [PYTHON, *command], cwd=ROOT, env=self.env(), capture_output=True, text=True
        )
        if done.returncode:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
        return done.stdout

    def run(self) -> dict:
        a = self.args
        port = free_port()
        self.emulator_url = f"http://127.0.0.1:{port}"
        self.start(
            PYTHON,
            "-m",
            "emulator",
            "--port",
            str(port),
            "--qps",
            str(a.qps),
            "--key",
            KEY,
            "--slots",
            str(a.slots),
            "--duration-min",
            str(a.duration_min),
            "--duration-max",
            str(a.duration_max),
            "--failure-rate",
            str(a.failure_rate),
            "--seed",
            str(self.seed),
            "--progress-curve",
            self.curve,
            log="emulator",
        )
        try:
            wait_for(f"{self.emulator_url}/_emulator/counters")
            self.reset_database()
            self.start(
                CELERY,
                "-A",
                "config",
                "worker",
                "--concurrency",
                str(a.workers),
                "--without-mingle",
                "--without-gossip",
                "--loglevel",
                "WARNING",
                log="worker",
            )
            self.start(
                CELERY,
                "-A",
                "config",
                "beat",
                "--loglevel",
                "WARNING",
                "--schedule",
                str(self.var / "beat-schedule"),
                log="beat",
            )
            time.sleep(3)  # the worker connects and beat starts ticking
            before = {}
            since = 0.0
            if a.warm_up:  # an account that has finished tasks before: the planner has learned
                self.pipeline("push", "--photos", str(a.warm_up), "--seed", str(10_000 + self.seed))
                self.pipeline("collect", "--wait", str(a.timeout))
                time.sleep(2)  # let PicWish's slots drain
                before = get_json(f"{self.emulator_url}/_emulator/counters")
                since = time.time()
            self.pipeline("push", "--photos", str(a.photos), "--seed", str(self.seed))
            sampling = ["--estimates"] if a.estimates else []
            report = json.loads(
                self.pipeline("collect", "--wait", str(a.timeout), "--since", str(since), *sampling)
            )
            # The clock starts when the first photo is uploaded, not when Python starts.
            report["started"] = report["first_upload"]
            report["counters"] = since_warm_up(
                get_json(f"{self.emulator_url}/_emulator/counters"), before
            )
            if a.save:
                Path(f"{a.save}.{self.label}.json").write_text(json.dumps(report, indent=1))
            return measure(report, a)
        finally:
            self.stop()

    def reset_database(self) -> None:
        url = self.env()["DATABASE_URL"]
        if url.startswith("postgres"):
            recreate_database(url)
        self.manage("migrate", "--no-input", "-v0")
        broker = self.env()["CELERY_BROKER_URL"]
        if broker.startswith("redis"):
            subprocess.run(
                [CELERY, "-A", "config", "purge", "-f"],
                cwd=ROOT,
                env=self.env(),
                capture_output=True,
            )

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


LAG_TARGET = 3.0  # seconds, for the lag p95


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def even_timing(durations: list[float]) -> float:
    """Requests per task with these processing times for a poller that polls every task first
    at the same time after its start, the latest a detection lag p95 of LAG_TARGET allows
    (when the shortest task the p95 does not leave out is seen LAG_TARGET late), and once more
    each task still processing then, when its progress says it ends; plus one create per task.

    A poller cannot know a duration before the task ends, so this is what it can hope for;
    first polls timed unevenly may do a little better or (more likely) worse.
    """
    if not durations:
        return float("nan")
    n, ordered = len(durations), sorted(durations)
    first_poll = ordered[n - 1 - round(0.95 * (n - 1))] + LAG_TARGET
    return (2 * n + sum(d > first_poll for d in durations)) / n


def informed_timing(durations: list[float], curve: str) -> float:
    """Requests per task with these processing times for a poller that knows them as a
    distribution (not which task takes which) and what the emulator's states and `curve` report
    at each share of the processing time: every first poll at even timing's time; then, while
    the task runs, the next poll at the longest duration still consistent with everything the
    task has reported, or LAG_TARGET after the shortest such duration if that comes first (so no
    later poll is more than LAG_TARGET late); plus one create per task.

    With the linear curve this is even timing (progress tells the end to a tenth of a second).
    Where progress says nothing (stuck), only the states and the distribution narrow the end.
    A reference, not a bound: a cleverer schedule may spend the 5 % of lag allowed elsewhere.
    """
    if not durations:
        return float("nan")
    if curve == "linear":
        return even_timing(durations)

    def reported(duration: float, at: float) -> tuple[int, int]:
        share = at / duration
        phase = (
            0
            if share < timeline.PREPARING_SHARE
            else 2
            if share >= 1 - timeline.PUBLISHING_SHARE
            else 1
        )
        return phase, timeline.progress_at(curve, share)

    n, ordered = len(durations), sorted(durations)
    first_poll = ordered[n - 1 - round(0.95 * (n - 1))] + LAG_TARGET
    requests = 0
    for duration in durations:
        at, consistent, polls = first_poll, ordered, 1
        while at < duration:
            seen = reported(duration, at)
            consistent = [d for d in consistent if d > at and reported(d, at) == seen]
            at = min(consistent[-1], consistent[0] + LAG_TARGET)
            polls += 1
        requests += 1 + polls
    return requests / n


def measure(report: dict, args) -> dict:
    """One run's raw figures, from the pipeline's report and the emulator's counters."""
    counters = report["counters"]
    upstream = counters["tasks"]
    lags, durations = [], []
    for task in report["tasks"]:
        record = upstream.get(task["remote_task_id"] or "", {})
        done = record.get("completed_at")
        if done and task["detected_at"]:
            lags.append(task["detected_at"] - done)
            durations.append(done - record["started_at"])
            if args.verbose:
                polls = " ".join(f"{t - record['started_at']:+.1f}" for t in record["polled_at"])
                print(
                    f"    lag {task['detected_at'] - done:5.2f} s  polls {task['polls']}  "
                    f"queued {record['started_at'] - record['created_at']:5.1f} s  "
                    f"duration {done - record['started_at']:4.1f} s  state {task['state']:3}  "
                    f"polled at {polls} s from the start"
                )
    spans = [
        (t["started_at"], t["completed_at"])
        for t in upstream.values()
        if t["started_at"] and t["completed_at"]
    ]
    if args.verbose and spans:
        first, last = min(s for s, _ in spans), max(e for _, e in spans)
        busy = sum(e - s for s, e in spans) / (args.slots * (last - first))
        print(f"    answers: create {counters.get('create')}, poll {counters.get('poll')}")
        last_start = max(s for s, _ in spans)
        before = sum(min(e, last_start) - s for s, e in spans)
        after = sum(e - max(s, last_start) for s, e in spans if e > last_start)
        print(
            f"    idle slot-seconds: {args.slots * (last_start - first) - before:.1f} before the "
            f"last start ({last_start - first:.1f} s in), "
            f"{args.slots * (last - last_start) - after:.1f} after it"
        )
        print(
            f"    upstream busy {busy:.0%} of {args.slots} slots from first start to last end "
            f"({last - first:.1f} s); first start {first - report['started']:.1f} s, "
            f"last detection {report['finished'] - last:.1f} s after the last end"
        )
    return {
        "tasks": len(report["tasks"]),
        "completed": sum(1 for t in report["tasks"] if t["state"] == 1),
        "unfinished": report["unfinished"],
        "elapsed_s": report["finished"] - report["started"],
        "requests": sum(n for kind in ("create", "poll") for n in counters.get(kind, {}).values()),
        "http_429": counters.get("rate_limited", 0),
        "tightest_window_s": counters.get("tightest_window_s") or float("nan"),
        "lags": lags,
        "durations": durations,
        "estimate_errors": estimate_errors(report),
    }


def estimate_errors(report: dict) -> list[tuple[str, float]]:
    """(phase, seconds the outlook's finish was off) of every outlook sampled of a task that
    finished: phase "waiting" while photos could be ahead of it, else "processing"."""
    errors = []
    for task in report["tasks"]:
        finished = task.get("finished_at")
        for _, done_at, ahead in task.get("estimates", []) if finished else []:
            if done_at is not None:
                errors.append(
                    ("waiting" if ahead is not None else "processing", done_at - finished)
                )
    return errors


def show_estimates(label: str, runs: dict[int, dict], every: str = "every second") -> None:
    """How far the outlooks the pages showed were from the actual finishing times."""
    errors = [error for run in runs.values() for error in run.get("estimate_errors", [])]
    if not errors:
        return
    print(f"\n{label}: outlooks sampled {every}, error = estimated minus actual finish")
    print("  phase        samples  |error| median / p90   bias (median signed)")
    for phase in ("waiting", "processing", "all"):
        signed = [e for p, e in errors if phase in ("all", p)]
        if signed:
            absolute = [abs(e) for e in signed]
            print(
                f"  {phase:<12}{len(signed):>8}  {percentile(absolute, 0.5):6.2f} / "
                f"{percentile(absolute, 0.9):6.2f} s     {percentile(signed, 0.5):+6.2f} s"
            )


def pool(runs: list[dict], args, curve: str = "linear") -> dict:
    """The figures of one or more runs taken together, as one longer run."""
    tasks = sum(r["tasks"] for r in runs)
    elapsed = sum(r["elapsed_s"] for r in runs)
    lags = [lag for r in runs for lag in r["lags"]]
    capacity = min(args.slots / ((args.duration_min + args.duration_max) / 2), args.qps / 2)
    return {
        "tasks": tasks,
        "completed": sum(r["completed"] for r in runs),
        "unfinished": sum(r["unfinished"] for r in runs),
        "elapsed_s": elapsed,
        "tasks_per_s": tasks / elapsed,
        "capacity_per_s": capacity,
        "share_of_capacity": tasks / elapsed / capacity,
        "requests_per_task": sum(r["requests"] for r in runs) / tasks,
        "even_timing": informed_timing([d for r in runs for d in r["durations"]], curve),
        "http_429": sum(r["http_429"] for r in runs),
        "tightest_window_s": min(r["tightest_window_s"] for r in runs),
        "lag_p50_s": percentile(lags, 0.5),
        "lag_p95_s": percentile(lags, 0.95),
        "lag_max_s": max(lags) if lags else float("nan"),
    }


def show(label: str, runs: dict[int, dict], args, curve: str = "linear") -> dict:
    """Print one row per seed and, for several seeds, one for all of them; returns the pool."""
    print(f"\n{label}")
    print(
        "  seed  tasks (completed)  elapsed  tasks/s (of capacity)  requests/task (even timing)  "
        "429s  lag p50 / p95 / max"
    )
    rows = [(str(seed), pool([run], args, curve)) for seed, run in runs.items()]
    total = pool(list(runs.values()), args, curve)
    if len(runs) > 1:
        rows.append(("all", total))
    for name, f in rows:
        print(
            f"  {name:>4}  {f['tasks']:5} ({f['completed']:3})        {f['elapsed_s']:6.1f} s  "
            f"{f['tasks_per_s']:.3f} ({f['share_of_capacity']:6.1%})        "
            f"{f['requests_per_task']:.2f} ({f['even_timing']:.2f})                  "
            f"{f['http_429']:4}  {f['lag_p50_s']:.2f} / {f['lag_p95_s']:.2f} / "
            f"{f['lag_max_s']:.2f} s"
        )
    print(
        f"  capacity limit {total['capacity_per_s']:.3f} tasks/s; {total['unfinished']} tasks "
        f"unfinished; {max(1, int(args.qps)) + 1} requests in a row took at least "
        f"{total['tightest_window_s']:.3f} s (the window is 1 s)"
    )
    return total


def seed_list(text: str) -> list[int]:
    """ "1-5" or "1,3,7" (or both: "1-3,7")."""
    seeds = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds += range(int(low), int(high or low) + 1)
    return seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--qps", type=float, default=2.0)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--duration-min", type=float, default=2.0)
    parser.add_argument("--duration-max", type=float, default=8.0)
    parser.add_argument("--failure-rate", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--seeds", type=seed_list, default="1-5", help='one run per seed: "1-5", "1,3,7"'
    )
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument(
        "--curve",
        dest="curve_names",
        action="append",
        default=[],
        metavar="NAME",
        help="the emulator's progress curve (linear, plateaus, late_jump, stuck); repeatable",
    )
    parser.add_argument(
        "--curves", type=lambda text: text.split(","), default=[], help='e.g. "linear,stuck"'
    )
    parser.add_argument(
        "--warm-up",
        type=int,
        default=0,
        metavar="PHOTOS",
        help="first push this many photos through each run, unmeasured, so that the planner "
        "has finished tasks to learn from (an account in use, not a new one)",
    )
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument(
        "--estimates",
        action="store_true",
        help="also sample, every second, the finish the pages would show of each photo in "
        "flight, and print how far those estimates were from the actual finish",
    )
    parser.add_argument(
        "--saved",
        metavar="PREFIX",
        help="print the planned runs' figures from the reports an earlier run saved with "
        "--save PREFIX instead of running (implies --skip-naive)",
    )
    parser.add_argument("--verbose", action="store_true", help="print every task's figures")
    parser.add_argument(
        "--save", metavar="PREFIX", help="write each run's raw report to PREFIX.<run>.json"
    )
    parser.add_argument(
        "--planning-cost",
        action="store_true",
        help="instead of the runs: the planner's query times at 10,000 and 1,000,000 finished "
        "tasks (PostgreSQL; a few minutes)",
    )
    parser.add_argument("--planning-sizes", default="10000,1000000", help=argparse.SUPPRESS)
    parser.add_argument("--planning-repeats", default="50", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.planning_cost:
        planning_cost(args)
        return

    print(
        f"Workload: {args.photos} photos, emulator QPS {args.qps}, {args.slots} slots, "
        f"durations {args.duration_min}-{args.duration_max} s, "
        f"{args.failure_rate:.0%} failures, {args.workers} worker processes, "
        f"seeds {', '.join(map(str, args.seeds))}"
    )
    print(
        "Even timing: the requests per task if every first poll came at the same time after "
        f"its task's start, the latest a lag p95 of {LAG_TARGET:g} s allows with the durations "
        "drawn, and each later poll at the longest duration still consistent with what the "
        f"curve reported (at most {LAG_TARGET:g} s after the shortest)."
    )
    curves = args.curves + args.curve_names or ["linear"]
    totals = {}
    for curve in curves:
        if args.saved:  # the figures of an earlier run's reports, without running again
            planned = {
                seed: measure(
                    json.loads(Path(f"{args.saved}.planned_{curve}_{seed}.json").read_text()), args
                )
                for seed in args.seeds
            }
        else:
            planned = {seed: Run(args, "planned", None, seed, curve).run() for seed in args.seeds}
        totals[curve] = show(
            f"Planned polling (the product), progress curve {curve}", planned, args, curve
        )
        show_estimates(f"Estimated finish, progress curve {curve}", planned)
        if args.skip_naive or args.saved:
            continue
        naive = {seed: Run(args, "naive", 1.0, seed, curve).run() for seed in args.seeds}
        naive_total = show(
            f"Fixed 1-second polling through the same limiter, progress curve {curve}",
            naive,
            args,
            curve,
        )
        print(f"\nRatios (planned / fixed 1 s, all seeds, {curve})")
        for key, label in [
            ("tasks_per_s", "tasks per second"),
            ("requests_per_task", "requests per task"),
            ("lag_p95_s", "detection lag p95"),
        ]:
            print(f"  {label:<24}{totals[curve][key] / naive_total[key]:.2f}")
    if len(curves) > 1:
        summary(totals)


# The targets, checked on each curve's pooled row.
TARGETS = {
    "share_of_capacity": (0.90, ">="),
    "requests_per_task": (2.5, "<="),
    "http_429": (0, "<="),
    "lag_p95_s": (LAG_TARGET, "<="),
}


def summary(totals: dict[str, dict]) -> None:
    print(
        "\nPlanned polling per progress curve, all seeds (targets: at least 90 % of capacity, "
        f"at most 2.5 requests per task, no 429, lag p95 at most {LAG_TARGET:g} s)"
    )
    print(
        "  curve      tasks/s (of capacity)  requests/task (even timing)  429s  lag p50 / p95"
        "  missed"
    )
    for curve, f in totals.items():
        missed = [
            name
            for name, (limit, way) in TARGETS.items()
            if not (f[name] >= limit if way == ">=" else f[name] <= limit)
        ]
        print(
            f"  {curve:<10} {f['tasks_per_s']:.3f} ({f['share_of_capacity']:6.1%})        "
            f"{f['requests_per_task']:.2f} ({f['even_timing']:.2f})                  "
            f"{f['http_429']:4}  {f['lag_p50_s']:.2f} / {f['lag_p95_s']:.2f}    "
            f"{', '.join(missed) or 'none'}"
        )


if __name__ == "__main__":
    main()
