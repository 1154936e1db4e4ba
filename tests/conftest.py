import io
import time

import factory
import numpy as np
import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections, transaction
from PIL import Image

from config.celery_app import app as celery_app
from restorations.accounts.models import Membership, Role, Team, User
from restorations.jobs import services


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Every test writes its files into a fresh folder, so leftovers are visible and isolated."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


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


@pytest.fixture
def alice(db):
    """Owner of the shared team "studio"."""
    return UserFactory(username="alice")


@pytest.fixture
def bob(db):
    """Member of "studio"."""
    return UserFactory(username="bob")


@pytest.fixture
def victor(db):
    """Viewer (read-only) in "studio"."""
    return UserFactory(username="victor")


@pytest.fixture
def charlie(db):
    """An outsider: a user with no role in "studio"."""
    return UserFactory(username="charlie")


@pytest.fixture
def studio(alice, bob, victor):
    team = Team.objects.create(name="Studio", slug="studio")
    Membership.objects.create(team=team, user=alice, role=Role.OWNER)
    Membership.objects.create(team=team, user=bob, role=Role.MEMBER)
    Membership.objects.create(team=team, user=victor, role=Role.VIEWER)
    return team


def login_in_team(client, user, team):
    client.force_login(user)
    session = client.session
    session["current_team"] = str(team.public_id)
    session.save()
    return client


@pytest.fixture
def celery_worker_thread():
    """A real Celery worker in this process, on the broker in CELERY_BROKER_URL (Redis in CI).

    Tests using it need committed data: mark them django_db(transaction=True).
    """
    celery_app.control.purge()  # leftovers of an earlier run must not reach this database
    with start_worker(
        celery_app, pool="threads", concurrency=2, perform_ping_check=False, shutdown_timeout=30
    ):
        yield
    connections.close_all()


def wait_until_final(task, seconds: float = 90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        task.refresh_from_db()
        if task.is_final:
            return task
        time.sleep(0.2)
    raise AssertionError(f"task still at state {task.state} after {seconds} s")
