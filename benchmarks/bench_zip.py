"""A batch's ZIP, streamed: how soon it starts, how fast it goes, what memory it takes.

`make bench-zip` makes one batch of photos in a throw-away setup (SQLite and files in a
temporary DESK_VAR_DIR, or, when DATABASE_URL names a PostgreSQL server, a database of its own
there, created for the run and dropped after it), each completed with a result of about
200 KB (a generated, noisy 640 x 480 JPEG, different for every photo), through the product's
own services. Then a fresh process logs in with Django's test client, requests the batch ZIP
(`jobs:batch_download`) and reads the streamed response chunk by chunk, keeping none of it,
and prints:

- first bytes: seconds from the request to its first chunk (target: within 1 s);
- total: seconds until the last chunk, and the rate in MB/s (MB: 10^6 bytes, here and below);
- peak memory: the most resident memory (RSS) the process had while serving the ZIP, over what
  it had idle, just before the request (target: within 30 MB). The kernel's high-water mark
  (VmHWM in /proc/self/status) is reset just before the request (`echo 5 > clear_refs`); where
  the kernel refuses, a thread samples VmRSS every millisecond instead.

It also checks that the ZIP ends with a central directory that lists every entry.

    python benchmarks/bench_zip.py [--photos 500]
"""

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
USERNAME = "bench"
BENCH_DATABASE = f"desk_bench_zip_{os.getpid()}"
RESULT_SIZE = (640, 480)
MB = 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--step", choices=["prepare", "measure"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.photos)
    elif args.step == "measure":
        measure()
    else:
        orchestrate(args.photos)


# --- The orchestrator: a throw-away setup, then one process per step --------------------------


def orchestrate(photos: int) -> None:
    var = Path(tempfile.mkdtemp(prefix="desk-bench-zip-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DJANGO_", "DESK_", "PICWISH_", "DATABASE_", "CELERY_", "AWS_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DJANGO_DEBUG="false",
        DJANGO_LOG_LEVEL="WARNING",
        DJANGO_ALLOWED_HOSTS="testserver",
        DESK_VAR_DIR=str(var),
    )
    server = os.environ.get("DATABASE_URL", "")
    postgres = urlsplit(server).scheme.startswith("postgres")
    if postgres:
        env["DATABASE_URL"] = server.rsplit("/", 1)[0] + f"/{BENCH_DATABASE}"
        _postgres(server, f"CREATE DATABASE {BENCH_DATABASE}")
    try:
        setup = "PostgreSQL" if postgres else "SQLite"
        print(f"{photos} photos, {setup}, files in {var}", flush=True)
        _step(env, "prepare", photos)
        _step(env, "measure", photos)
    finally:
        if postgres:
            _postgres(server, f"DROP DATABASE IF EXISTS {BENCH_DATABASE} WITH (FORCE)")
        shutil.rmtree(var, ignore_errors=True)


def _step(env: dict, step: str, photos: int) -> None:
    command = [sys.executable, __file__, "--step", step, "--photos", str(photos)]
    subprocess.run(command, cwd=ROOT, env=env, check=True)


def _postgres(url: str, sql: str) -> None:
    import psycopg

    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql)


# --- Step 1: the batch, through the product's services ----------------------------------------


def _django():
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def prepare(photos: int) -> None:
    _django()
    import hashlib

    from django.core.files.base import ContentFile
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.core.management import call_command

    from restorations.accounts.models import User
    from restorations.jobs import services, transitions
    from restorations.jobs.models import Batch
    from restorations.jobs.states import State

    call_command("migrate", "--no-input", verbosity=0)
    user = User.objects.create_user(USERNAME, password="bench pass phrase")
    team = user.personal_team()
    batch = Batch.objects.create(team=team, created_by=user, operation="scale")
    started, total = time.monotonic(), 0
    for n in range(photos):
        original = SimpleUploadedFile(f"photo {n}.png", _png(n), "image/png")
        task = services.create_task(
            team=team,
            user=user,
            file=original,
            file_name=original.name,
            operation="scale",
            options={},
            batch=batch,
        )
        result = _jpeg(n)
        total += len(result)
        transitions.move(task, State.PROCESSING, expect=State.QUEUED)
        transitions.move(task, State.SAVING_RESULT, expect=State.PROCESSING)
        services.store_result(
            task,
            ContentFile(result),
            extension=".jpg",
            sha256=hashlib.sha256(result).hexdigest(),
            size=len(result),
            width=RESULT_SIZE[0],
            height=RESULT_SIZE[1],
            fmt="JPEG",
        )
    print(
        f"made {photos} results, {total / MB:.1f} MB ({total / photos / 1000:.0f} KB each) "
        f"in {time.monotonic() - started:.0f} s",
        flush=True,
    )


def _png(seed: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (seed % 256, 80, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(seed: int) -> bytes:
    """About 200 KB: a colour gradient under strong noise, which JPEG cannot squeeze."""
    import numpy as np
    from PIL import Image

    width, height = RESULT_SIZE
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    gradient = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], -1)
    noisy = np.clip(gradient + rng.normal(0, 40, gradient.shape), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noisy).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


# --- Step 2: the download, in a fresh process -------------------------------------------------


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


class PeakMemory:
    """The highest RSS from start() to stop(), in kB: the kernel's own high-water mark when it
    can be reset, else sampled."""

    def __init__(self):
        self.sampled = False
        self._peak = 0
        self._running = False

    def start(self) -> None:
        try:
            Path("/proc/self/clear_refs").write_text("5")
        except OSError:
            self.sampled = True
            self._running = True
            self._peak = _status_kb("VmRSS")
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _sample(self) -> None:
        while self._running:
            self._peak = max(self._peak, _status_kb("VmRSS"))
            time.sleep(0.001)

    def stop(self) -> int:
        if self.sampled:
            self._running = False
            self._thread.join()
            return self._peak
        return _status_kb("VmHWM")


def measure() -> None:
    _django()
    from django.test import Client
    from django.urls import reverse

    from restorations.accounts.models import User
    from restorations.jobs.models import Batch

    client = Client()
    client.force_login(User.objects.get(username=USERNAME))
    batch = Batch.objects.get()
    url = reverse("jobs:batch_download", args=[batch.public_id])
    assert client.get(reverse("jobs:task_list")).status_code == 200  # a warm process
    expected_entries = batch.tasks.count() + 1  # and the manifest

    idle = _status_kb("VmRSS")
    peak = PeakMemory()
    peak.start()
    started = time.perf_counter()
    response = client.get(url)
    assert response.status_code == 200 and response.streaming, response
    first_bytes = None
    size = 0
    tail = b""
    for chunk in response.streaming_content:
        if first_bytes is None:
            first_bytes = time.perf_counter() - started
        size += len(chunk)
        tail = (tail + chunk)[-22:]
    total = time.perf_counter() - started
    response.close()
    peak_kb = peak.stop()

    entries = _entries_in_central_directory(tail)
    if entries != expected_entries:
        raise SystemExit(f"the ZIP lists {entries} entries, not {expected_entries}")
    how = "sampled every ms" if peak.sampled else "VmHWM, reset before the request"
    print(f"ZIP: {size / MB:.1f} MB, {entries} entries")
    print(f"first bytes: {first_bytes:.3f} s (target 1 s)")
    print(f"total: {total:.2f} s, {size / MB / total:.1f} MB/s")
    print(
        f"peak memory over idle: {(peak_kb - idle) * 1024 / MB:.1f} MB (idle RSS "
        f"{idle * 1024 / MB:.1f} MB, peak {peak_kb * 1024 / MB:.1f} MB, {how}; target 30 MB)"
    )


def _entries_in_central_directory(tail: bytes) -> int:
    """The entry count of the end-of-central-directory record (the last 22 bytes of a ZIP
    without a comment)."""
    if not tail.startswith(b"PK\x05\x06"):
        raise SystemExit("the ZIP does not end with its central directory")
    return int.from_bytes(tail[10:12], "little")


if __name__ == "__main__":
    main()
