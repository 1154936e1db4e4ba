"""What the emulator counts for /_emulator/counters: answers, faults, polls, overlaps."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from .replies import Reply
from .timeline import Task, snapshot


@dataclass
class Stats:
    codes: dict[str, Counter[str]] = field(
        default_factory=lambda: {kind: Counter() for kind in ("create", "poll", "download")}
    )
    rate_limited: int = 0
    dropped: int = 0
    mismatched: int = 0
    expired_downloads: int = 0
    poll_times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    orphans: list[str] = field(default_factory=list)

    def record(self, kind: str, reply: Reply, mismatched: bool) -> None:
        """Count an answer by the status it means, even when sent as HTTP 200 (`mismatched`)."""
        if reply.drop:
            self.dropped += 1
            return
        self.codes.setdefault(kind, Counter())[str(reply.status)] += 1
        self.rate_limited += int(reply.status == 429)
        self.mismatched += int(mismatched)


class OverlapTracker:
    """The most requests for one key that were in flight at the same moment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: Counter[str] = Counter()
        self.max_seen = 0

    @contextmanager
    def track(self, key: str) -> Iterator[None]:
        with self._lock:
            self._active[key] += 1
            self.max_seen = max(self.max_seen, self._active[key])
        try:
            yield
        finally:
            with self._lock:
                self._active[key] -= 1
                if not self._active[key]:
                    del self._active[key]

    def clear(self) -> None:
        with self._lock:
            self.max_seen = 0


def task_record(task: Task, now: float, polled_at: list[float]) -> dict[str, Any]:
    current = snapshot(task, now)
    return {
        "endpoint": task.endpoint,
        "state": current.state,
        "created_at": task.created_at,
        "started_at": task.started_at if now >= task.started_at else None,
        "completed_at": current.completed_at or None,
        "polled_at": list(polled_at),
    }


def counters_body(
    stats: Stats,
    tightest_window: float | None,
    max_overlap: int,
    tasks: Iterable[Task],
    now: float,
) -> dict[str, Any]:
    """The body of GET /_emulator/counters (docs/emulator.md describes every key)."""
    return {
        **{kind: dict(sorted(codes.items())) for kind, codes in stats.codes.items()},
        "rate_limited": stats.rate_limited,
        "tightest_window_s": tightest_window,
        "dropped": stats.dropped,
        "mismatched": stats.mismatched,
        "expired_downloads": stats.expired_downloads,
        "polls_per_task": {key: len(times) for key, times in stats.poll_times.items()},
        "max_concurrent_polls_per_task": max_overlap,
        "orphans": list(stats.orphans),
        "tasks": {
            task.task_id: task_record(task, now, stats.poll_times.get(task.task_id, []))
            for task in tasks
        },
    }
