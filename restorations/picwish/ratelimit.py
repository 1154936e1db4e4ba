"""One request schedule per PicWish key, shared by every process on every machine.

PicWish counts a key's creates and polls together in any rolling 1 s window and answers 429 above
its QPS. A token bucket with a burst of 2 can put 3 requests into one window, so this is GCRA
without burst: the shared state of a key is one number, the theoretical arrival time (TAT) of its
next free slot, and consecutive slots are at least `interval_for(qps)` apart. Redis holds the TAT
when the broker is Redis; a locked file per key does on a single machine (the embedded default).
See docs/rate-limiting.md.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import logging
import math
import os
import re
import time
from abc import ABC, abstractmethod
from pathlib import Path

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

# Slots are spread 5% wider than 1/qps, so at 2 QPS three consecutive requests span 1.05 s: a
# request may reach PicWish up to 50 ms later than the one two after it (scheduling and network
# jitter between processes) and the window still holds at most qps. It costs 5% of the
# throughput. Senders keep their part of the jitter under 20 ms (accounts.LATE_FOR_SLOT);
# see docs/rate-limiting.md for what was measured.
SAFETY = 0.05
ADMIT_HORIZON = 1.0  # seconds ahead the poller may book slots for
REDIS_KEY_PREFIX = "desk:ratelimit:"
REDIS_SCHEMES = ("redis://", "rediss://")
KEY_ID_LENGTH = 16
_KEY_ID = re.compile(rf"[0-9a-f]{{{KEY_ID_LENGTH}}}")
_TAT_FORMAT = "{:020.6f}"  # fixed width, so a rewrite always replaces every byte


def key_id_for(api_key: str) -> str:
    """A stable id for a key that reveals nothing of it: raw keys never reach Redis or files."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:KEY_ID_LENGTH]


def interval_for(qps: float) -> float:
    """Seconds between two consecutive slots of one key."""
    if qps <= 0:
        raise ValueError(f"qps must be positive, not {qps}")
    return (1 + SAFETY) / qps


def _schedule(
    tat: float, now: float, interval: float, wanted: int, horizon: float, lead: float
) -> tuple[list[float], float]:
    """GCRA booking: the delays of the slots granted and the next free slot's time."""
    slot = max(tat, now + lead)
    delays: list[float] = []
    while len(delays) < wanted and slot - now <= horizon:
        delays.append(slot - now)
        slot += interval
    return delays, slot


class RateLimiter(ABC):
    """A key's request schedule; a backend only books slots atomically with `_book`."""

    @abstractmethod
    def _book(
        self, key_id: str, interval: float, wanted: int, horizon: float, lead: float
    ) -> tuple[list[float], float]:
        """Atomically book slots: (delay of each slot granted, seconds until the next free one)."""

    def try_acquire(self, key_id: str, qps: float) -> float:
        """Take a slot now if one is free: 0.0, else the seconds until the next one (none taken)."""
        delays, next_wait = self._checked_book(key_id, qps, 1, 0.0, 0.0)
        return 0.0 if delays else next_wait

    def acquire(self, key_id: str, qps: float, timeout: float) -> bool:
        """Wait for a slot for at most `timeout` seconds; True when one was taken."""
        # Waiters poll instead of booking ahead, so the TAT stays within one interval of now
        # and the dispatcher's reserve() still finds slots inside its horizon.
        deadline = time.monotonic() + timeout
        while (wait := self.try_acquire(key_id, qps)) > 0:
            if wait > deadline - time.monotonic():
                return False  # the TAT only moves forward: no slot can come in time
            time.sleep(wait)
        return True

    def reserve(
        self, key_id: str, qps: float, horizon: float = ADMIT_HORIZON, lead: float = 0.0
    ) -> float | None:
        """Book the next slot if it starts within `horizon` s: the delay to send at, else None.
        No slot is booked sooner than `lead` s from now (the time a request needs to reach the
        process that sends it)."""
        delays = self.reserve_many(key_id, qps, 1, horizon, lead)
        return delays[0] if delays else None

    def reserve_many(
        self,
        key_id: str,
        qps: float,
        wanted: int,
        horizon: float = ADMIT_HORIZON,
        lead: float = 0.0,
    ) -> list[float]:
        """Book up to `wanted` slots starting within `horizon` s: the delay to send each at."""
        if wanted <= 0:
            return []
        return self._checked_book(key_id, qps, wanted, horizon, lead)[0]

    def _checked_book(
        self, key_id: str, qps: float, wanted: int, horizon: float, lead: float
    ) -> tuple[list[float], float]:
        if not _KEY_ID.fullmatch(key_id):
            raise ValueError("key_id must come from key_id_for(api_key)")
        return self._book(key_id, interval_for(qps), wanted, horizon, lead)


# KEYS[1]: the TAT in microseconds of the Redis server's clock, so skewed workers agree.
# ARGV: interval (µs), horizon (µs), wanted, lead (µs). Returns {next free slot's delay, delay
# of each slot granted...} in µs. Mirrors _schedule() above.
_BOOK_SCRIPT = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval, horizon, wanted = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local slot = math.max(tonumber(redis.call('GET', KEYS[1]) or now), now + tonumber(ARGV[4]))
local delays = {}
while #delays < wanted and slot - now <= horizon do
  delays[#delays + 1] = slot - now
  slot = slot + interval
end
if #delays > 0 then
  local ttl_ms = math.ceil((slot - now) / 1000) + 1000
  redis.call('SET', KEYS[1], slot, 'PX', ttl_ms)
end
table.insert(delays, 1, slot - now)
return delays
"""


class RedisRateLimiter(RateLimiter):
    """Shared by every machine using the Redis at `redis_url`. An idle key expires one second
    after its TAT has passed, when it no longer constrains anything."""

    def __init__(self, redis_url: str) -> None:
        # redis-py's pool notices a fork and opens new connections in the child.
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)
        self._book_script = self._redis.register_script(_BOOK_SCRIPT)

    def _book(
        self, key_id: str, interval: float, wanted: int, horizon: float, lead: float
    ) -> tuple[list[float], float]:
        args = [math.ceil(interval * 1e6), math.floor(horizon * 1e6), wanted, math.ceil(lead * 1e6)]
        reply = self._book_script(keys=[REDIS_KEY_PREFIX + key_id], args=args)
        next_wait, *delays = (microseconds / 1e6 for microseconds in reply)
        return delays, next_wait


class FileRateLimiter(RateLimiter):
    """Shared by the processes of one machine: one file per key holds the TAT (Unix time),
    read and rewritten under an exclusive flock."""

    def __init__(self, folder: Path | str) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def _book(
        self, key_id: str, interval: float, wanted: int, horizon: float, lead: float
    ) -> tuple[list[float], float]:
        fd = os.open(self.folder / key_id, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            now = time.time()  # read under the lock, so slots are handed out in lock order
            tat = _read_tat(fd, key_id, now)
            delays, slot = _schedule(tat, now, interval, wanted, horizon, lead)
            if delays:
                os.pwrite(fd, _TAT_FORMAT.format(slot).encode(), 0)
            return delays, slot - now
        finally:
            os.close(fd)  # also releases the lock


def _read_tat(fd: int, key_id: str, now: float) -> float:
    text = os.pread(fd, 64, 0)
    if not text:
        return now
    try:
        return float(text)
    except ValueError:
        # Only damage outside this module gets here; starting afresh costs at most one slot.
        logger.warning("Unreadable rate limit state for key %s; starting afresh", key_id)
        return now


def limiter_for_settings() -> RateLimiter:
    """The Redis at PICWISH_RATE_LIMIT_URL when it is set, else the broker when it is Redis,
    else a folder in VAR_DIR."""
    url = settings.PICWISH_RATE_LIMIT_URL or settings.CELERY_BROKER_URL
    if url.startswith(REDIS_SCHEMES):
        return _redis_limiter(url)
    return _file_limiter(Path(settings.VAR_DIR) / "ratelimit")


@functools.cache
def _redis_limiter(url: str) -> RedisRateLimiter:
    return RedisRateLimiter(url)


@functools.cache
def _file_limiter(folder: Path) -> FileRateLimiter:
    return FileRateLimiter(folder)
