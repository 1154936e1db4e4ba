"""Fixtures shared by every test: the alice (owner), bob (member), victor (viewer) and
charlie (outsider) cast of the team "studio", a fresh media folder, a real Celery worker, a
real S3 protocol server. Helpers that are not fixtures live in tests/factories.py."""

import secrets
import socket

import boto3
import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connections
from moto.server import ThreadedMotoServer

from config.celery_app import app as celery_app
from restorations.accounts.models import Membership, Role, Team
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    """Every test writes its files into a fresh folder, so leftovers are visible and isolated."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


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


@pytest.fixture
def planned_picwish(settings):
    """The site's PicWish key set (a fresh one per test, so a fresh rate-limiter schedule), the
    poll planner on, and the account assumed to run 4 tasks at once."""
    settings.PICWISH_API_KEY = secrets.token_hex()
    settings.PICWISH_POLL_INTERVAL = None
    settings.PICWISH_ASSUMED_CONCURRENCY = 4


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


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on a free loopback port, for the whole run: its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3_storage(settings, s3_server):
    """Files go to a fresh bucket on the S3 server, through django-storages' S3Storage with the
    options config/settings/base.py gives it (dummy credentials): the bucket's boto3 handle."""
    credentials = {
        "endpoint_url": s3_server,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }
    name = f"desk-{secrets.token_hex(6)}"
    bucket = boto3.resource("s3", **credentials).create_bucket(Bucket=name)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket.name,
                "endpoint_url": s3_server,
                "region_name": "us-east-1",
                "access_key": "testing",
                "secret_key": "testing",
                "default_acl": None,
                "file_overwrite": False,
                "querystring_auth": True,
                "querystring_expire": 300,
                "max_memory_size": 2 * 1024 * 1024,
            },
        },
    }
    return bucket
