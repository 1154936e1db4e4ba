"""The Django side of the poller benchmark, run as a separate process by bench_poller.py.

python benchmarks/pipeline.py push --photos 40 --seed 7
python benchmarks/pipeline.py collect --wait 600
"""

import argparse
import io
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import transaction  # noqa: E402
from PIL import Image  # noqa: E402

from restorations.accounts.models import User  # noqa: E402
from restorations.jobs import estimates, services  # noqa: E402
from restorations.jobs.models import Task  # noqa: E402

USERNAME = "bench"


def photo(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, 256, dtype=np.float32)
    pixels = np.stack([np.add.outer(ramp, ramp) / 2] * 3, axis=-1)
    pixels += rng.normal(0, 12, pixels.shape)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG")
    return buffer.getvalue()


def push(photos: int, seed: int) -> None:
    user, _ = User.objects.get_or_create(username=USERNAME)
    team = user.personal_team()
    for n in range(photos):
        upload = SimpleUploadedFile(f"photo-{n:03}.jpg", photo(seed + n), "image/jpeg")
        with transaction.atomic():
            services.create_task(
                team=team,
                user=user,
                file=upload,
                file_name=upload.name,
                operation="scale",
                options={},
            )


def detected_at(task: Task) -> float | None:
    """When the project saw PicWish finish the task (success or failure)."""
    for event in task.events.all():
        was_upstream = event.from_state is not None and 0 <= event.from_state < 100
        seen_done = event.to_state == 102 or (event.to_state is not None and event.to_state < 0)
        if was_upstream and event.from_state != 1 and seen_done:
            return event.created_at.timestamp()
    return None


def collect(wait: float, since: float = 0.0, sample_estimates: bool = False) -> None:
    """Wait for the benchmark user's tasks to end, then print their figures; only those created
    after `since` (Unix time) when it is given. With `sample_estimates`, every second the
    outlook the pages would show of each task in flight is kept, to compare with when it
    finished."""
    deadline = time.monotonic() + wait
    tasks = Task.objects.filter(team__memberships__user__username=USERNAME)
    if since:
        tasks = tasks.filter(created_at__gt=datetime.fromtimestamp(since, tz=UTC))
    samples: dict[int, list] = {}
    next_sample = 0.0
    while time.monotonic() < deadline and tasks.active().exists():
        if sample_estimates and time.monotonic() >= next_sample:
            next_sample = time.monotonic() + 1.0
            now = time.time()
            for pk, outlook in estimates.outlooks(tasks.active().select_related("team")).items():
                done_at = outlook.done_at.timestamp() if outlook.done_at else None
                samples.setdefault(pk, []).append([now, done_at, outlook.ahead])
        time.sleep(0.25 if sample_estimates else 0.5)
    rows = list(tasks.prefetch_related("events").order_by("created_at"))
    finished = [t.finished_at.timestamp() for t in rows if t.finished_at]
    print(
        json.dumps(
            {
                "first_upload": min(t.created_at.timestamp() for t in rows),
                "finished": max(finished) if finished else time.time(),
                "unfinished": sum(1 for t in rows if not t.is_final),
                "tasks": [
                    {
                        "remote_task_id": t.remote_task_id,
                        "state": t.state,
                        "polls": t.poll_count,
                        "detected_at": detected_at(t),
                        "finished_at": t.finished_at.timestamp() if t.finished_at else None,
                        "estimates": samples.get(t.pk, []),
                    }
                    for t in rows
                ],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("push")
    p.add_argument("--photos", type=int, required=True)
    p.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("collect")
    c.add_argument("--wait", type=float, default=600)
    c.add_argument("--since", type=float, default=0.0)
    c.add_argument("--estimates", action="store_true")
    args = parser.parse_args()
    if args.command == "push":
        push(args.photos, args.seed)
    else:
        collect(args.wait, args.since, args.estimates)


if __name__ == "__main__":
    main()
