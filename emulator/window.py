"""The QPS window: how many requests one key may send in any rolling window."""

from __future__ import annotations

import threading
import time
from collections import deque


class QpsWindow:
    """At most `limit` admitted requests per key in any rolling window (deques of times).

    `tightest_span` is the shortest time in which `limit` + 1 consecutive requests of one key
    arrived: at or above the window, nothing was refused; how far above is the room a client
    left for jitter.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._admitted: dict[str, deque[float]] = {}
        self._latest: dict[str, deque[float]] = {}
        self.tightest_span: float | None = None

    def admit(self, key: str, qps: float, now: float | None = None) -> bool:
        # Below 1 QPS the window widens so that the long-run rate still equals qps.
        limit, window = max(1, int(qps)), max(1.0, 1 / qps)
        now = time.monotonic() if now is None else now
        with self._lock:
            latest = self._latest.setdefault(key, deque(maxlen=limit))
            if len(latest) == limit:
                span = now - latest[0]
                self.tightest_span = min(span, self.tightest_span or span)
            latest.append(now)
            times = self._admitted.setdefault(key, deque())
            while times and times[0] <= now - window:
                times.popleft()
            if len(times) >= limit:
                return False
            times.append(now)
            return True

    def clear(self) -> None:
        with self._lock:
            self._admitted.clear()
            self._latest.clear()
            self.tightest_span = None
