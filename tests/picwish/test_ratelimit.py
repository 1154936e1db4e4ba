"""The PicWish rate limiter: at most qps requests per key in any 1 s window, across processes.

Every behaviour runs against both backends: a folder of locked files and Redis (at the broker URL
when it is Redis, else the local default; skipped only when no Redis answers there).
"""

import bisect
import functools
import logging
import math
import multiprocessing
import os
import secrets
import time
from collections.abc import Callable

import pytest
import redis

from restorations.picwish.ratelimit import (
    REDIS_KEY_PREFIX,
    REDIS_SCHEMES,
    FileRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    interval_for,
    key_id_for,
    limiter_for_settings,
)

_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "")
REDIS_URL = _BROKER_URL if _BROKER_URL.startswith(REDIS_SCHEMES) else "redis://127.0.0.1:6379/15"
# qps + 1 consecutive grants must span more than the 1 s window by at least this much, which is
# the room left for network jitter between the grant and PicWish receiving the request.
JITTER_ROOM = 0.05
# A grant is noted a little after it is made, several ms later when the machine is busy.
RECORDING_TOLERANCE = 0.010
PROCESSES = 4
SLOTS_PER_PROCESS = 6
CROSS_PROCESS_QPS = 5


@pytest.fixture(scope="session")
def redis_client() -> redis.Redis:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip(f"no Redis answers at {REDIS_URL}")
    return client


@pytest.fixture(params=["file", "redis"])
def make_limiter(request, tmp_path) -> Callable[[], RateLimiter]:
    """Builds limiters of one backend that share their state, as separate processes would."""
    if request.param == "redis":
        request.getfixturevalue("redis_client")
        return functools.partial(RedisRateLimiter, REDIS_URL)
    return functools.partial(FileRateLimiter, tmp_path / "ratelimit")


@pytest.fixture
def limiter(make_limiter) -> RateLimiter:
    return make_limiter()


@pytest.fixture
def key_id() -> str:
    return key_id_for(secrets.token_hex())


def most_in_window(times: list[float], window: float = 1.0) -> int:
    """The largest number of times in any closed window of `window` seconds."""
    times = sorted(times)
    return max(bisect.bisect_right(times, t + window) - i for i, t in enumerate(times))


def gaps(times: list[float]) -> list[float]:
    times = sorted(times)
    return [later - earlier for earlier, later in zip(times, times[1:], strict=False)]


def shortest_span(times: list[float], count: int) -> float:
    """The shortest time covered by `count` consecutive grants."""
    times = sorted(times)
    return min(times[i + count - 1] - times[i] for i in range(len(times) - count + 1))


def test_acquire_spaces_grants_by_the_interval(limiter, key_id):
    qps, grants = 4, 8
    times = []
    for _ in range(grants):
        assert limiter.acquire(key_id, qps, timeout=5)
        times.append(time.monotonic())

    assert min(gaps(times)) >= interval_for(qps) - RECORDING_TOLERANCE
    assert most_in_window(times) <= qps
    assert shortest_span(times, qps + 1) >= 1.0 + JITTER_ROOM
    # ...and it does not throttle harder than that.
    assert times[-1] - times[0] <= (grants - 1) * interval_for(qps) + 0.1


def test_try_acquire_tells_the_wait_and_takes_nothing_when_refused(limiter, key_id):
    qps = 4
    assert limiter.try_acquire(key_id, qps) == 0.0

    wait = limiter.try_acquire(key_id, qps)
    assert 0 < wait <= interval_for(qps)
    assert limiter.try_acquire(key_id, qps) <= wait  # the refusal did not push the slot back

    time.sleep(wait)
    assert limiter.try_acquire(key_id, qps) == 0.0


def test_acquire_gives_up_at_once_when_no_slot_comes_before_the_timeout(limiter, key_id):
    qps = 4
    assert limiter.acquire(key_id, qps, timeout=0)

    started = time.monotonic()
    assert not limiter.acquire(key_id, qps, timeout=interval_for(qps) / 2)
    assert time.monotonic() - started < 0.05

    assert limiter.acquire(key_id, qps, timeout=1)


def test_reserve_many_takes_only_the_slots_that_start_within_the_horizon(limiter, key_id):
    qps, horizon = 2, 1.0
    interval = interval_for(qps)
    fitting = len([k for k in range(10) if k * interval <= horizon])
    assert fitting == 2  # slots at 0 and 0.55 s; the third would be at 1.1 s

    assert len(limiter.reserve_many(key_id, qps, wanted=10, horizon=horizon)) == fitting
    assert len(limiter.reserve_many(key_id, qps, wanted=10, horizon=horizon)) == 0
    assert limiter.reserve(key_id, qps, horizon=horizon) is None


def test_reserve_many_returns_send_delays_one_interval_apart(limiter, key_id):
    qps = 2
    interval = interval_for(qps)

    assert limiter.reserve_many(key_id, qps, wanted=10, horizon=1.0) == pytest.approx(
        [0.0, interval], abs=0.001
    )
    assert limiter.reserve_many(key_id, qps, wanted=1, horizon=1.0) == []
    later = limiter.reserve(key_id, qps, horizon=2.0)
    assert later == pytest.approx(2 * interval, abs=0.05)
    assert limiter.try_acquire(key_id, qps) >= later  # a booked slot is taken for everyone


def test_reserve_books_no_sooner_than_the_lead(limiter, key_id):
    qps = 2
    assert limiter.reserve(key_id, qps, horizon=0.1, lead=0.2) is None  # beyond the horizon
    assert limiter.reserve(key_id, qps, horizon=1.0, lead=0.3) == pytest.approx(0.3, abs=0.01)
    # The slot after it is one interval later, whatever lead that request asks for.
    assert limiter.reserve(key_id, qps, horizon=2.0) == pytest.approx(
        0.3 + interval_for(qps), abs=0.02
    )


def test_reserve_many_takes_no_more_than_wanted(limiter, key_id):
    assert len(limiter.reserve_many(key_id, 2, wanted=1)) == 1
    assert len(limiter.reserve_many(key_id, 2, wanted=0)) == 0
    assert len(limiter.reserve_many(key_id, 2, wanted=10)) == 1


def test_keys_have_independent_schedules(limiter):
    first, second = key_id_for(secrets.token_hex()), key_id_for(secrets.token_hex())

    assert len(limiter.reserve_many(first, 2, wanted=10)) == 2
    assert len(limiter.reserve_many(second, 2, wanted=10)) == 2
    assert limiter.try_acquire(first, 2) > 0
    assert limiter.try_acquire(second, 2) > 0


def acquire_in_child(make_limiter, key_id, start, grants) -> None:
    limiter = make_limiter()
    start.wait()
    for _ in range(SLOTS_PER_PROCESS):
        if not limiter.acquire(key_id, CROSS_PROCESS_QPS, timeout=30):
            raise AssertionError("no slot within 30 s")
        grants.put(time.time())


@pytest.mark.slow
def test_processes_share_one_schedule(make_limiter, key_id):
    context = multiprocessing.get_context("fork")
    start, grants = context.Event(), context.Queue()
    children = [
        context.Process(target=acquire_in_child, args=(make_limiter, key_id, start, grants))
        for _ in range(PROCESSES)
    ]
    for child in children:
        child.start()
    start.set()
    times = [grants.get(timeout=30) for _ in range(PROCESSES * SLOTS_PER_PROCESS)]
    for child in children:
        child.join(timeout=5)
        assert child.exitcode == 0

    assert most_in_window(times) <= CROSS_PROCESS_QPS
    assert min(gaps(times)) >= interval_for(CROSS_PROCESS_QPS) - RECORDING_TOLERANCE
    assert shortest_span(times, CROSS_PROCESS_QPS + 1) >= 1.0 + JITTER_ROOM


def test_key_id_for_is_a_stable_hash_that_hides_the_key():
    api_key = "pk-" + secrets.token_hex(16)

    key_id = key_id_for(api_key)

    assert key_id == key_id_for(api_key)
    assert len(key_id) == 16 and int(key_id, 16) >= 0
    assert api_key not in key_id
    assert key_id != key_id_for(api_key + "x")


def test_a_raw_key_is_refused_as_key_id(limiter):
    with pytest.raises(ValueError, match="key_id_for"):
        limiter.try_acquire("pk-" + secrets.token_hex(16), 2)


def test_file_backend_stores_only_the_key_id_and_a_time(tmp_path):
    api_key = "pk-" + secrets.token_hex(16)
    FileRateLimiter(tmp_path / "ratelimit").try_acquire(key_id_for(api_key), 2)

    (state,) = (tmp_path / "ratelimit").iterdir()
    assert state.name == key_id_for(api_key)
    assert float(state.read_text()) == pytest.approx(time.time() + interval_for(2), abs=0.1)


def test_file_backend_starts_afresh_from_damaged_state(tmp_path, key_id, caplog, monkeypatch):
    # A worker started by an earlier test may have reconfigured logging; listen regardless.
    monkeypatch.setattr(logging.getLogger("restorations.picwish.ratelimit"), "disabled", False)
    caplog.set_level(logging.WARNING, logger="restorations.picwish.ratelimit")
    (tmp_path / key_id).write_text("not a time")

    assert FileRateLimiter(tmp_path).try_acquire(key_id, 2) == 0.0
    assert "Unreadable rate limit state" in caplog.text


def test_redis_backend_names_keys_by_id_and_lets_idle_keys_expire(redis_client):
    api_key = "pk-" + secrets.token_hex(16)
    RedisRateLimiter(REDIS_URL).try_acquire(key_id_for(api_key), 2)

    names = [name.decode() for name in redis_client.scan_iter(match=REDIS_KEY_PREFIX + "*")]
    assert REDIS_KEY_PREFIX + key_id_for(api_key) in names
    assert not any(api_key in name for name in names)
    ttl_ms = redis_client.pttl(REDIS_KEY_PREFIX + key_id_for(api_key))
    assert 0 < ttl_ms <= math.ceil(interval_for(2) * 1000) + 1000


def test_redis_backend_keeps_the_slot_in_server_clock_microseconds(redis_client, key_id):
    RedisRateLimiter(REDIS_URL).try_acquire(key_id, 2)

    seconds, microseconds = redis_client.time()
    tat = int(redis_client.get(REDIS_KEY_PREFIX + key_id)) / 1e6
    assert tat - (seconds + microseconds / 1e6) == pytest.approx(interval_for(2), abs=0.05)


def test_settings_pick_redis_when_the_broker_is_redis(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/15"

    assert isinstance(limiter_for_settings(), RedisRateLimiter)
    assert limiter_for_settings() is limiter_for_settings()


def test_settings_pick_the_rate_limit_url_over_the_broker(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.PICWISH_RATE_LIMIT_URL = "redis://127.0.0.1:6379/15"

    assert isinstance(limiter_for_settings(), RedisRateLimiter)


def test_settings_pick_files_in_var_dir_without_redis(settings, tmp_path):
    settings.VAR_DIR = tmp_path
    settings.CELERY_BROKER_URL = "filesystem://"

    limiter = limiter_for_settings()

    assert isinstance(limiter, FileRateLimiter)
    assert limiter.folder == tmp_path / "ratelimit"
    assert limiter_for_settings() is limiter
