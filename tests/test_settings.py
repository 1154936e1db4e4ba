"""Settings read from the environment do what the README says they do.

Each check starts a fresh Python process with a controlled environment, so the settings module is
read as a deployment reads it and neither the test settings nor the machine's variables count.
"""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from restorations.picwish.ratelimit import REDIS_KEY_PREFIX, REDIS_SCHEMES, key_id_for

ROOT = Path(__file__).resolve().parent.parent
CONTROLLED_PREFIXES = ("DJANGO_", "DESK_", "DATABASE_", "CELERY_", "PICWISH_", "EMAIL_")

_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
BROKER_URL = _BROKER_URL if _BROKER_URL.startswith(REDIS_SCHEMES) else "redis://127.0.0.1:6379/5"
# Another database of the same server: the schedule must land there, not in the broker's.
_broker_db = int(BROKER_URL.rsplit("/", 1)[1] or 0)
RATE_LIMIT_URL = f"{BROKER_URL.rsplit('/', 1)[0]}/{(_broker_db + 1) % 16}"

# Books one slot for the key given in argv[1] with the limiter the settings choose. A very low
# QPS keeps the booked slot (and so the Redis key) alive for minutes, long enough to look.
BOOK_ONE_SLOT = """
import sys
import django
django.setup()
from restorations.picwish import ratelimit
limiter = ratelimit.limiter_for_settings()
limiter.try_acquire(ratelimit.key_id_for(sys.argv[1]), qps=0.01)
print(type(limiter).__name__)
"""


def run_settings(code: str, *args: str, tmp_path: Path, **environ: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith(CONTROLLED_PREFIXES)}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DESK_VAR_DIR=str(tmp_path / "var"),
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        **environ,
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def redis_server():
    clients = [redis.Redis.from_url(url) for url in (BROKER_URL, RATE_LIMIT_URL)]
    try:
        clients[0].ping()
    except redis.RedisError:
        pytest.skip(f"no Redis server answers at {BROKER_URL}")
    yield clients
    for client in clients:
        client.close()


def test_the_rate_limit_url_holds_the_schedule_not_the_broker(redis_server, tmp_path):
    broker, rate_limit = redis_server
    api_key = f"settings-test-{secrets.token_hex(8)}"
    redis_key = REDIS_KEY_PREFIX + key_id_for(api_key)
    try:
        done = run_settings(
            BOOK_ONE_SLOT,
            api_key,
            tmp_path=tmp_path,
            CELERY_BROKER_URL=BROKER_URL,
            PICWISH_RATE_LIMIT_URL=RATE_LIMIT_URL,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "RedisRateLimiter"
        assert rate_limit.exists(redis_key), f"no schedule in {RATE_LIMIT_URL}"
        assert not broker.exists(redis_key), f"the schedule went to the broker at {BROKER_URL}"
    finally:
        broker.delete(redis_key)
        rate_limit.delete(redis_key)


def test_without_a_rate_limit_url_the_redis_broker_holds_the_schedule(redis_server, tmp_path):
    broker, _rate_limit = redis_server
    api_key = f"settings-test-{secrets.token_hex(8)}"
    redis_key = REDIS_KEY_PREFIX + key_id_for(api_key)
    try:
        done = run_settings(
            BOOK_ONE_SLOT,
            api_key,
            tmp_path=tmp_path,
            CELERY_BROKER_URL=BROKER_URL,
            PICWISH_RATE_LIMIT_URL="",
        )
        assert done.returncode == 0, done.stderr
        assert broker.exists(redis_key)
    finally:
        broker.delete(redis_key)


def test_without_redis_anywhere_a_locked_file_holds_the_schedule(tmp_path):
    api_key = f"settings-test-{secrets.token_hex(8)}"
    done = run_settings(BOOK_ONE_SLOT, api_key, tmp_path=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "FileRateLimiter"
    assert (tmp_path / "var" / "ratelimit" / key_id_for(api_key)).is_file()


def test_a_rate_limit_url_that_is_not_redis_is_refused_at_start(tmp_path):
    done = run_settings(
        "import django; django.setup()",
        tmp_path=tmp_path,
        PICWISH_RATE_LIMIT_URL="memcached://127.0.0.1:11211",
    )
    assert done.returncode != 0
    assert "PICWISH_RATE_LIMIT_URL" in done.stderr


def test_the_embedded_broker_is_polled_often_enough_to_start_photos_at_once(tmp_path):
    """kombu's file-system transport polls its folders once a second by default; a photo then
    waited behind beat's dispatcher messages for seconds (make bench-latency measures it)."""
    done = run_settings(
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CELERY_BROKER_URL, "
        "settings.CELERY_BROKER_TRANSPORT_OPTIONS.get('polling_interval'))",
        tmp_path=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    broker, interval = done.stdout.split()
    assert broker == "filesystem://"
    assert interval != "None" and float(interval) <= 0.1


EMAIL_SETTINGS = (
    "import django; django.setup(); from django.conf import settings as s; "
    "print(s.EMAIL_BACKEND, s.EMAIL_HOST, s.EMAIL_PORT, s.EMAIL_HOST_USER, "
    "s.EMAIL_HOST_PASSWORD, s.EMAIL_USE_TLS, s.EMAIL_USE_SSL)"
)


@pytest.mark.parametrize("environ", [{}, {"EMAIL_URL": ""}], ids=["unset", "empty"])
def test_without_an_email_url_mails_are_printed_to_the_console(tmp_path, environ):
    done = run_settings(EMAIL_SETTINGS, tmp_path=tmp_path, **environ)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "django.core.mail.backends.console.EmailBackend"


def test_an_smtp_email_url_names_server_account_and_tls(tmp_path):
    done = run_settings(
        EMAIL_SETTINGS,
        tmp_path=tmp_path,
        EMAIL_URL="smtp+tls://desk%40example.com:s3cret%2Fpass@smtp.example.com:587",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "django.core.mail.backends.smtp.EmailBackend",
        "smtp.example.com",
        "587",
        "desk@example.com",
        "s3cret/pass",
        "True",
        "False",
    ]


def test_an_email_url_of_an_unknown_kind_is_refused_at_start(tmp_path):
    done = run_settings(EMAIL_SETTINGS, tmp_path=tmp_path, EMAIL_URL="pigeon://coop")
    assert done.returncode != 0
    assert "Invalid email schema pigeon" in done.stderr
