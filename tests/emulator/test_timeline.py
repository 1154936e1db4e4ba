"""Task timelines: the states and progress a poll reports at any moment, without HTTP."""

import functools
from concurrent.futures import Future

import pytest

from emulator import PROGRESS_CURVES, progress_at
from emulator.results import JobResult
from emulator.timeline import Slots, Task, snapshot
from restorations.engines import local
from tests.emulator.support import PHOTO


def _timeline_task(
    outcome: int, processing_code: int = 4, job=None, progress_curve: str = "linear"
) -> Task:
    """Created at 100, processed from 102 to 112."""
    return Task(
        task_id="t",
        endpoint="scale",
        return_type=1,
        created_at=100.0,
        started_at=102.0,
        finished_at=112.0,
        outcome=outcome,
        processing_code=processing_code,
        expire_result=False,
        result_token="token",
        job=job,
        progress_curve=progress_curve,
    )


@functools.cache
def _scaled_photo() -> local.LocalResult:
    return local.run(PHOTO, "scale", {}, source_format="PNG")


def _done_job() -> Future:
    job: Future = Future()
    job.set_result(JobResult(done_at=112.0, result=_scaled_photo()))
    return job


def test_the_timeline_passes_through_every_in_progress_state():
    task = _timeline_task(outcome=-8, processing_code=6)
    expected = [
        (100.5, 0, 0),  # queued
        (101.5, 3, 0),  # still queued after WAITING_AFTER: "waiting"
        (102.5, 2, 4),  # first tenth of the processing time: "preparing"
        (107.0, 6, 49),  # the task's processing code
        (111.5, 5, 94),  # last tenth: "publishing"
        (112.0, -8, 99),  # the planned outcome once processing is over
    ]
    for now, state, progress in expected:
        assert (snapshot(task, now).state, snapshot(task, now).progress) == (state, progress), now
    assert snapshot(task, 101.0).processed_at == 0
    assert snapshot(task, 105.0).processed_at == 102
    assert snapshot(task, 111.9).completed_at == 0
    assert snapshot(task, 500.0).completed_at == 112


def test_a_success_waits_in_publishing_until_its_result_exists():
    job: Future = Future()
    task = _timeline_task(outcome=1, job=job)
    assert snapshot(task, 113.0).state == 5
    result = _scaled_photo()
    job.set_result(JobResult(done_at=115.0, result=result))
    done = snapshot(task, 116.0)
    assert (done.state, done.progress, done.completed_at, done.result) == (1, 100, 115.0, result)


def test_an_in_progress_outcome_never_ends():
    task = _timeline_task(outcome=4)
    assert (snapshot(task, 10_000.0).state, snapshot(task, 10_000.0).completed_at) == (4, 0)


def test_slots_start_a_task_when_the_first_slot_is_free():
    slots = Slots()
    assert [slots.reserve(0.0, 5.0, 2) for _ in range(3)] == [0.0, 0.0, 5.0]
    # Down to one slot: the slot that frees first (at 5) goes, the task waits for the other.
    assert slots.reserve(1.0, 1.0, 1) == 10.0
    assert slots.reserve(20.0, 1.0, 3) == 20.0  # a free slot takes a late task at once


# --- progress curves

FRACTIONS = [step / 1000 for step in range(1001)]


@pytest.mark.parametrize("curve", PROGRESS_CURVES)
def test_every_progress_curve_rises_within_0_to_99(curve):
    values = [progress_at(curve, fraction) for fraction in FRACTIONS]
    assert values == sorted(values)
    assert all(isinstance(value, int) and 0 <= value <= 99 for value in values)
    # Outside 0..1 the curve holds its ends.
    assert progress_at(curve, -0.5) == values[0] and progress_at(curve, 1.5) == values[-1]


def test_the_linear_curve_rises_evenly():
    assert [progress_at("linear", f) for f in (0, 0.25, 0.5, 0.75, 1)] == [0, 24, 49, 74, 99]


def test_the_plateaus_curve_holds_one_value_per_reported_state():
    task = _timeline_task(outcome=-8, progress_curve="plateaus")
    held = {}
    for tick in range(1000):
        current = snapshot(task, 102 + tick / 100)
        held.setdefault(current.state, set()).add(current.progress)
    assert held == {2: {10}, 4: {40, 60}, 5: {90}}
    assert [progress_at("plateaus", f) for f in (0.3, 0.6)] == [40, 60]  # two halves of 4
    assert snapshot(task, 112.0).progress == 90  # the failure keeps the last step


def test_the_late_jump_curve_creeps_then_jumps_when_processing_is_over():
    creeping = [progress_at("late_jump", fraction) for fraction in FRACTIONS[:-1]]
    assert max(creeping) <= 15 and progress_at("late_jump", 0.95) > 10
    assert progress_at("late_jump", 1.0) == 99
    task = _timeline_task(outcome=1, job=_done_job(), progress_curve="late_jump")
    assert snapshot(task, 111.9).progress <= 15 and snapshot(task, 112.0).progress == 100


def test_the_stuck_curve_holds_one_value_from_start_to_end():
    assert {progress_at("stuck", fraction) for fraction in FRACTIONS} == {50}
    task = _timeline_task(outcome=1, job=Future(), progress_curve="stuck")  # result pending
    assert snapshot(task, 101.0).progress == 0  # still queued
    assert {snapshot(task, now).progress for now in (102.0, 107.0, 111.9, 200.0)} == {50}


@pytest.mark.parametrize("curve", PROGRESS_CURVES)
def test_the_curve_changes_progress_only(curve):
    linear = _timeline_task(outcome=1, job=_done_job())
    curved = _timeline_task(outcome=1, job=_done_job(), progress_curve=curve)
    for tick in range(1500):
        now = 100 + tick / 100
        a, b = snapshot(linear, now), snapshot(curved, now)
        assert (a.state, a.processed_at, a.completed_at) == (
            b.state,
            b.processed_at,
            b.completed_at,
        )
    assert snapshot(curved, 113.0).progress == 100
