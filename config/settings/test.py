"""Settings for the test suite. PostgreSQL when DATABASE_URL is set, else SQLite."""

import tempfile

from config.settings.base import *  # noqa: F403
from config.settings.base import env

SECRET_KEY = "test-only-secret-key"
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tests replace this per test with a fresh folder (tests/conftest.py).
MEDIA_ROOT = tempfile.mkdtemp(prefix="desk-test-media-")
STATIC_ROOT = tempfile.mkdtemp(prefix="desk-test-static-")
# Tests that need a broker start their own worker on CELERY_BROKER_URL (Redis in CI).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
PICWISH_API_KEY = ""
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory: tests that start worker processes share the test database with them.
    _db_dir = tempfile.mkdtemp(prefix="desk-test-db-")
    DATABASES["default"]["TEST"] = {"NAME": f"{_db_dir}/test.sqlite3"}  # noqa: F405
