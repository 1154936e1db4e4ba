"""Shared test helpers: factories and plain functions. Fixtures stay in conftest.py."""

import io
import time

import factory
import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from PIL import Image

from restorations.accounts.models import User
from restorations.jobs import services


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
