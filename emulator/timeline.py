"""A task's timeline: when it starts and ends, and what a poll at any moment reports.

States and progress are computed from timestamps, so they advance in real time whether or not
anyone polls. How `progress` moves is not documented by PicWish: `progress_at` offers curves.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from restorations.engines import local

from .results import JobResult
from .states import COMPLETED, PREPARING, PUBLISHING, QUEUED, WAITING, is_final

# A queued task reports "waiting" (3) instead of "queued" (0) after this long in the queue.
WAITING_AFTER = 1.0
# Shares of the processing time reported as "preparing" (2, first) and "publishing" (5, last).
PREPARING_SHARE = 0.1
PUBLISHING_SHARE = 0.1
# Share of tasks that report "internal loop processing" (6) instead of "processing" (4).
LOOP_SHARE = 0.25

PLATEAU_PROGRESS = (10, 40, 60, 90)  # preparing, first and second half of processing, publishing
LATE_JUMP_CREEP = 15  # late_jump creeps from 0 to this, then jumps when processing is over
STUCK_PROGRESS = 50  # stuck reports this from the start of processing until the task is done


@dataclass(frozen=True)
class Task:
    task_id: str
    endpoint: str
    return_type: int
    created_at: float
    started_at: float  # when a slot takes it
    finished_at: float  # when its processing time is over
    outcome: int  # the planned state once processing is over
    processing_code: int
    expire_result: bool
    result_token: str
    # Computes the result of a planned success: fetches image_url and runs the local engine.
    job: Future[JobResult] | None
    progress_curve: str = "linear"  # the configured curve when the task was created


@dataclass(frozen=True)
class Snapshot:
    state: int
    progress: int
    processed_at: float = 0.0  # 0 until processing starts
    completed_at: float = 0.0  # 0 until the state is final
    result: local.LocalResult | None = None


def snapshot(task: Task, now: float) -> Snapshot:
    """The task as it stands at `now`; a pure function of its timeline and its result job."""
    if now < task.started_at:
        return Snapshot(QUEUED if now - task.created_at < WAITING_AFTER else WAITING, 0)
    if now < task.finished_at:
        fraction = (now - task.started_at) / (task.finished_at - task.started_at)
        progress = progress_at(task.progress_curve, fraction)
        return Snapshot(_processing_state(task, fraction), progress, task.started_at)
    if task.job is not None:
        return _job_snapshot(task, task.job)
    completed_at = task.finished_at if is_final(task.outcome) else 0.0
    return Snapshot(task.outcome, _ended(task), task.started_at, completed_at)


def _processing_state(task: Task, fraction: float) -> int:
    if fraction < PREPARING_SHARE:
        return PREPARING
    if fraction >= 1 - PUBLISHING_SHARE:
        return PUBLISHING
    return task.processing_code


def _job_snapshot(task: Task, job_future: Future[JobResult]) -> Snapshot:
    # Still computing the result, or never will: stop() cancels the jobs that had not started.
    if not job_future.done() or job_future.cancelled():
        return Snapshot(PUBLISHING, _ended(task), task.started_at)
    job = job_future.result()
    completed_at = max(task.finished_at, job.done_at)
    if job.failure is not None:
        return Snapshot(job.failure, _ended(task), task.started_at, completed_at)
    return Snapshot(COMPLETED, 100, task.started_at, completed_at, job.result)


def _ended(task: Task) -> int:
    return progress_at(task.progress_curve, 1.0)


# --- progress curves


def _linear(fraction: float) -> int:
    return int(99 * fraction)


def _plateaus(fraction: float) -> int:
    # One step per reported state, and two in processing, so each step ends when a state does.
    middle = PREPARING_SHARE + (1 - PREPARING_SHARE - PUBLISHING_SHARE) / 2
    steps = (PREPARING_SHARE, middle, 1 - PUBLISHING_SHARE)
    return PLATEAU_PROGRESS[sum(fraction >= step for step in steps)]


def _late_jump(fraction: float) -> int:
    return 99 if fraction >= 1 else int(LATE_JUMP_CREEP * fraction)


def _stuck(fraction: float) -> int:
    return STUCK_PROGRESS


_CURVES: dict[str, Callable[[float], int]] = {
    "linear": _linear,
    "plateaus": _plateaus,
    "late_jump": _late_jump,
    "stuck": _stuck,
}
PROGRESS_CURVES = tuple(_CURVES)


def progress_at(curve: str, fraction: float) -> int:
    """The progress reported `fraction` (0..1) of the way through a task's processing time.

    1 is "the processing time is over but the task is not complete": a failure, or a success
    whose result is still being made. A completed task always reports 100.
    """
    return _CURVES[curve](min(1.0, max(0.0, fraction)))


# --- upstream slots


class Slots:
    """When PicWish's processing slots are next free; not thread-safe (the caller locks)."""

    def __init__(self) -> None:
        self._free_at: list[float] = []  # heap: when each slot is next free

    def reserve(self, now: float, duration: float, slots: int) -> float:
        """When the next free slot takes a task that arrives now (slots may change at run time)."""
        free_at = self._free_at
        while len(free_at) < slots:
            heapq.heappush(free_at, 0.0)
        while len(free_at) > slots:
            heapq.heappop(free_at)
        started_at = max(now, heapq.heappop(free_at))
        heapq.heappush(free_at, started_at + duration)
        return started_at
