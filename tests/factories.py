"""Shared test helpers: factories and plain functions. Fixtures stay in conftest.py."""

import hashlib
import io
import time

import factory
import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from PIL import Image

from restorations.accounts.models import User
from restorations.jobs import local_runs, services, transitions
from restorations.jobs.models import Engine, Task, Upload
from restorations.jobs.states import State


def stored_files(root) -> list:
    return sorted(p for p in root.rglob("*") if p.is_file())


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery")


def photo_bytes(width=64, height=48, fmt="PNG", seed=0) -> bytes:
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def photo_upload(name="photo.png", data=None, content_type="image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, photo_bytes() if data is None else data, content_type)


def stored_task(team, user, name="photo.png", *, data=None, operation="scale", **options):
    """One task of a stored generated photo, as an upload makes it (`options` go to
    services.create_task, e.g. batch)."""
    return services.create_task(
        team=team,
        user=user,
        file=photo_upload(name, data),
        file_name=name,
        operation=operation,
        options={},
        **options,
    )


def restored_task(team, user, name="photo.png", **options):
    """A stored task the built-in engine has run, in this process (a stored result, its
    thumbnail and the whole timeline); `options` as for `stored_task`."""
    task = stored_task(team, user, name, **options)
    local_runs.run(task.pk)
    task.refresh_from_db()
    assert task.state == State.COMPLETED, task.failure_message
    return task


def finished_task(team, user, name="photo.png", *, result=None, seed=0, **options) -> Task:
    """A stored task completed with a given result, without running an engine (fast, and the
    result's bytes are known); `options` as for `stored_task`."""
    return complete(stored_task(team, user, name, **options), result=result, seed=seed)


def complete(task, *, result=None, seed=0) -> Task:
    """Complete a queued task with `result` (bytes; a generated JPEG by default), its sha256,
    size and dimensions recorded as the engines record them."""
    data = photo_bytes(80, 60, fmt="JPEG", seed=seed) if result is None else result
    transitions.move(task, State.PROCESSING, expect=State.QUEUED)
    transitions.move(task, State.SAVING_RESULT, expect=State.PROCESSING)
    assert services.store_result(
        task,
        ContentFile(data),
        extension=".jpg",
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        width=80,
        height=60,
        fmt="JPEG",
    )
    task.refresh_from_db()
    return task


class OpenCountingStorage(FileSystemStorage):
    """Local storage that records the name of every file opened, in order (class-wide, as
    Django makes a new instance when the settings change)."""

    opened: list[str] = []

    def _open(self, name, mode="rb"):
        type(self).opened.append(name)
        return super()._open(name, mode)


def scale_tasks(team, user, count: int) -> list:
    """`count` upscale tasks of generated photos, created in one transaction."""
    with transaction.atomic():
        return [
            services.create_task(
                team=team,
                user=user,
                file=photo_upload(f"p{n}.png"),
                file_name=f"p{n}.png",
                operation="scale",
                options={},
            )
            for n in range(count)
        ]


def login_in_team(client, user, team):
    client.force_login(user)
    session = client.session
    session["current_team"] = str(team.public_id)
    session.save()
    return client


def wait_until_final(task, seconds: float = 90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        task.refresh_from_db()
        if task.is_final:
            return task
        time.sleep(0.2)
    raise AssertionError(f"task still at state {task.state} after {seconds} s")


def listed_tasks(team, user, count: int, *, name="photo{n}.png", **fields) -> list:
    """`count` task rows without files, oldest first (for list pages, which read rows only);
    `fields` set on every task, e.g. state or created_at."""
    uploads = Upload.objects.bulk_create(
        Upload(
            team=team,
            uploaded_by=user,
            file=f"originals/{team.public_id}/{n}.png",
            original_name=name.format(n=n),
            sha256="0" * 64,
            bytes=1,
            width=1,
            height=1,
            format="PNG",
        )
        for n in range(count)
    )
    created_at = fields.pop("created_at", None)
    fields = {"state": State.QUEUED, "operation": "scale", "engine": Engine.LOCAL, **fields}
    # One by one, so created_at grows along the list.
    tasks = [
        Task.objects.create(upload=upload, team=team, created_by=user, **fields)
        for upload in uploads
    ]
    if created_at is not None:
        Task.objects.filter(pk__in=[task.pk for task in tasks]).update(created_at=created_at)
    return tasks


def plan(queryset) -> str:
    """PostgreSQL's plan of `queryset` with sequential scans off until the test's transaction
    ends, so that it shows the index that suits the query best among those that can serve it
    (not the cost estimates of a small table)."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    return queryset.explain()
