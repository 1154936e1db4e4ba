"""Benchmark of the PicWish pipeline against the emulator: `make bench-poller`.

Starts the PicWish emulator (QPS 2, 4 upstream slots, durations uniform 2-8 s, 20 % failures),
then pushes 40 photos through the real pipeline (separate Celery beat and worker processes) and
prints throughput, requests per task, 429s and completion-detection lag. Then runs the same
workload with the fixed 1-second poller and prints the ratios.

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


class Run:
    """One workload through the pipeline, in its own database, broker and folders."""

    def __init__(self, args, label: str, poll_interval: float | None):
        self.args, self.label, self.poll_interval = args, label, poll_interval
        self.var = Path(tempfile.mkdtemp(prefix=f"desk-bench-{label}-"))
        self.processes: list[subprocess.Popen] = []

    def env(self) -> dict:
        env = dict(os.environ)
        base_db = os.environ.get("DATABASE_URL", "")
        if base_db.startswith("postgres"):
            env["DATABASE_URL"] = base_db.rsplit("/", 1)[0] + f"/desk_bench_{self.label}"
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
            "manage.py",
            "picwish_emulator",
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
            str(a.seed),
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
            self.pipeline("push", "--photos", str(a.photos), "--seed", str(a.seed))
            report = json.loads(self.pipeline("collect", "--wait", str(a.timeout)))
            # The clock starts when the first photo is uploaded, not when Python starts.
            report["started"] = report["first_upload"]
            report["counters"] = get_json(f"{self.emulator_url}/_emulator/counters")
            if a.save:
                Path(f"{a.save}.{self.label}.json").write_text(json.dumps(report, indent=1))
            return summarise(report, a)
        finally:
            self.stop()

    def reset_database(self) -> None:
        url = self.env()["DATABASE_URL"]
        if url.startswith("postgres"):
            name = url.rsplit("/", 1)[1]
            admin = url.rsplit("/", 1)[0] + "/postgres"
            for sql in (f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}"):
                subprocess.run(["psql", admin, "-qc", sql], check=True, capture_output=True)
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


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def summarise(report: dict, args) -> dict:
    counters = report["counters"]
    upstream = counters["tasks"]
    requests = sum(n for kind in ("create", "poll") for n in counters.get(kind, {}).values())
    lags = []
    for task in report["tasks"]:
        done = upstream.get(task["remote_task_id"] or "", {}).get("completed_at")
        if done and task["detected_at"]:
            lags.append(task["detected_at"] - done)
            if args.verbose:
                record = upstream[task["remote_task_id"]]
                polls = " ".join(f"{t - record['started_at']:+.1f}" for t in record["polled_at"])
                print(
                    f"    lag {task['detected_at'] - done:5.2f} s  polls {task['polls']}  "
                    f"queued {record['started_at'] - record['created_at']:5.1f} s  "
                    f"duration {done - record['started_at']:4.1f} s  state {task['state']:3}  "
                    f"polled at {polls} s from the start"
                )
    finished = len(report["tasks"])
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
    elapsed = report["finished"] - report["started"]
    mean_duration = (args.duration_min + args.duration_max) / 2
    capacity = min(args.slots / mean_duration, args.qps / 2)
    return {
        "tasks": finished,
        "photos": args.photos,
        "completed": sum(1 for t in report["tasks"] if t["state"] == 1),
        "elapsed_s": elapsed,
        "tasks_per_s": finished / elapsed,
        "capacity_per_s": capacity,
        "share_of_capacity": finished / elapsed / capacity,
        "requests_per_task": requests / finished,
        "http_429": counters.get("rate_limited", 0),
        "tightest_window_s": counters.get("tightest_window_s") or float("nan"),
        "window_requests": max(1, int(args.qps)) + 1,
        "lag_p50_s": percentile(lags, 0.5),
        "lag_p95_s": percentile(lags, 0.95),
        "lag_max_s": max(lags) if lags else float("nan"),
        "unfinished": report["unfinished"],
    }


def show(label: str, result: dict) -> None:
    print(f"\n{label}")
    print(
        f"  tasks finished          {result['tasks']} ({result['completed']} completed) "
        f"from {result['photos']} photos, {result['unfinished']} unfinished"
    )
    print(f"  elapsed                 {result['elapsed_s']:.1f} s")
    print(
        f"  tasks per second        {result['tasks_per_s']:.3f} "
        f"(capacity limit {result['capacity_per_s']:.3f}: "
        f"{result['share_of_capacity']:.1%})"
    )
    print(f"  upstream requests/task  {result['requests_per_task']:.2f}")
    print(
        f"  429 answers             {result['http_429']} ({result['window_requests']} requests "
        f"in a row took at least {result['tightest_window_s']:.3f} s; the window is 1 s)"
    )
    print(
        f"  detection lag p50 / p95 {result['lag_p50_s']:.2f} s / {result['lag_p95_s']:.2f} s "
        f"(max {result['lag_max_s']:.2f} s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=40)
    parser.add_argument("--qps", type=float, default=2.0)
    parser.add_argument("--slots", type=int, default=4)
    parser.add_argument("--duration-min", type=float, default=2.0)
    parser.add_argument("--duration-max", type=float, default=8.0)
    parser.add_argument("--failure-rate", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--verbose", action="store_true", help="print every task's figures")
    parser.add_argument(
        "--save", metavar="PREFIX", help="write each run's raw report to PREFIX.<run>.json"
    )
    args = parser.parse_args()

    print(
        f"Workload: {args.photos} photos, emulator QPS {args.qps}, {args.slots} slots, "
        f"durations {args.duration_min}-{args.duration_max} s, "
        f"{args.failure_rate:.0%} failures, {args.workers} worker processes"
    )
    planned = Run(args, "planned", None).run()
    show("Planned polling (the product)", planned)
    if args.skip_naive:
        return
    naive = Run(args, "naive", 1.0).run()
    show("Fixed 1-second polling through the same limiter", naive)
    print("\nRatios (planned / fixed 1 s)")
    for key, label in [
        ("tasks_per_s", "tasks per second"),
        ("requests_per_task", "requests per task"),
        ("lag_p95_s", "detection lag p95"),
    ]:
        print(f"  {label:<24}{planned[key] / naive[key]:.2f}")


if __name__ == "__main__":
    main()
