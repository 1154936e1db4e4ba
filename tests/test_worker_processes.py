"""The pipeline as deployed: separate Celery worker and beat processes against the emulator.

The test database is shared with the processes (PostgreSQL when DATABASE_URL is set, else a
SQLite file), and so is the broker: Redis, the one named by CELERY_BROKER_URL or else the local
server's database 5. These tests are about several machines' worth of processes, which is what
Redis is for; without a Redis server they are skipped.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.db import connection

from emulator import EmulatorConfig, PicWishEmulator
from restorations.jobs.models import Task
from restorations.jobs.states import State
from tests.factories import scale_tasks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).with_name("celery"))
KEY = "process-key"


def _redis_broker() -> str:
    url = os.environ.get("CELERY_BROKER_URL", "")
    url = url if url.startswith("redis") else "redis://127.0.0.1:6379/5"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.RedisError:
        pytest.skip(f"no Redis server answers at {url}")
    return url


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    return f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class Processes:
    def __init__(self, tmp_path: Path, emulator: PicWishEmulator, qps: float):
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.local",
            "DJANGO_DEBUG": "false",
            "DJANGO_LOG_LEVEL": "WARNING",
            "DESK_VAR_DIR": str(tmp_path),  # media in tmp_path/media, as the test process uses
            "DATABASE_URL": _database_url(),
            "CELERY_BROKER_URL": _redis_broker(),
            "PICWISH_API_KEY": KEY,
            "PICWISH_BASE_URL": emulator.url,
            "PICWISH_QPS": str(qps),
            "PICWISH_LEASE_SECONDS": "4",
            "PICWISH_BACKOFF_SECONDS": "0.2",
        }
        self.tmp_path = tmp_path
        self.running: list[subprocess.Popen] = []
        if self.env["CELERY_BROKER_URL"].startswith("redis"):
            subprocess.run(
                [CELERY, "-A", "config", "purge", "-f"],
                cwd=ROOT,
                env=self.env,
                capture_output=True,
                check=True,
            )

    def start(self, *args: str, name: str) -> subprocess.Popen:
        log = open(self.tmp_path / f"{name}.log", "w")  # noqa: SIM115 (the process writes it)
        process = subprocess.Popen(
            [CELERY, "-A", "config", *args],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        self.running.append(process)
        return process

    def worker(self, name: str) -> subprocess.Popen:
        return self.start(
            "worker",
            "-n",
            f"{name}@%h",
            "--concurrency",
            "1",
            "--loglevel",
            "WARNING",
            "--without-mingle",
            "--without-gossip",
            name=name,
        )

    def beat(self, name: str) -> subprocess.Popen:
        return self.start(
            "beat",
            "--loglevel",
            "WARNING",
            "--schedule",
            str(self.tmp_path / f"{name}-schedule"),
            name=name,
        )

    def kill(self, process: subprocess.Popen, sig=signal.SIGKILL) -> None:
        os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.running:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    def logs(self) -> str:
        return "\n".join(p.read_text()[-2000:] for p in self.tmp_path.glob("*.log"))


@pytest.fixture
def emulator():
    with PicWishEmulator(EmulatorConfig(api_key=KEY, seed=5)).start() as running:
        yield running


@pytest.fixture
def processes(tmp_path, emulator):
    started = []

    def make(qps: float) -> Processes:
        started.append(Processes(tmp_path, emulator, qps))
        return started[-1]

    yield make
    for group in started:
        group.stop_all()


def wait_for_all(tasks: list[Task], group: Processes, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not Task.objects.filter(pk__in=[t.pk for t in tasks]).active().exists():
            return
        time.sleep(0.5)
    states = sorted(
        Task.objects.filter(pk__in=[t.pk for t in tasks]).values_list("state", flat=True)
    )
    raise AssertionError(f"unfinished after {seconds} s: {states}\n{group.logs()}")


def test_four_workers_keep_a_two_qps_account_free_of_429s(
    settings, emulator, processes, studio, alice
):
    settings.PICWISH_API_KEY = KEY
    emulator.configure(qps=2, slots=8, duration_min=0.3, duration_max=1.0)
    group = processes(qps=2)
    for n in range(4):
        group.worker(f"w{n}")
    group.beat("beat")
    tasks = scale_tasks(studio, alice, 40)
    wait_for_all(tasks, group, seconds=240)
    counters = emulator.counters()
    assert counters["rate_limited"] == 0
    assert counters["create"].get("200") == 40
    assert set(Task.objects.values_list("state", flat=True)) == {State.COMPLETED}


def test_two_beats_and_two_workers_never_double_poll_or_double_create(
    settings, emulator, processes, studio, alice
):
    settings.PICWISH_API_KEY = KEY
    # Slow answers widen the window in which a double poll would overlap.
    emulator.configure(qps=10, slots=4, duration_min=0.5, duration_max=1.5, latency=0.3)
    group = processes(qps=8)
    group.worker("w1"), group.worker("w2"), group.beat("b1"), group.beat("b2")
    tasks = scale_tasks(studio, alice, 12)
    wait_for_all(tasks, group, seconds=180)
    counters = emulator.counters()
    assert counters["max_concurrent_polls_per_task"] <= 1
    assert counters["create"].get("200") == 12 and not counters["orphans"]
    remote_ids = list(Task.objects.values_list("remote_task_id", flat=True))
    assert len(set(remote_ids)) == 12
    assert set(Task.objects.values_list("state", flat=True)) == {State.COMPLETED}


def test_a_worker_killed_mid_poll_leaves_no_task_stuck(
    settings, emulator, processes, studio, alice
):
    settings.PICWISH_API_KEY = KEY
    emulator.configure(qps=10, duration_min=0.5, duration_max=1.0, latency=2.0)
    group = processes(qps=8)
    doomed = group.worker("doomed")
    group.beat("beat")
    tasks = scale_tasks(studio, alice, 3)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:  # until a poll is under way in the doomed worker
        if Task.objects.filter(
            state__in=[0, 2, 3, 4, 5, 6],
            lease_expires_at__isnull=False,
            poll_count=0,
            remote_task_id__gt="",
        ).exists():
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"no poll started\n{group.logs()}")
    time.sleep(1.0)  # inside the 2 s answer
    group.kill(doomed)
    group.worker("survivor")
    wait_for_all(tasks, group, seconds=120)
    assert set(Task.objects.values_list("state", flat=True)) == {State.COMPLETED}
    assert emulator.counters()["max_concurrent_polls_per_task"] <= 1
