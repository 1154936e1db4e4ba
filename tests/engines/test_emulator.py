"""The PicWish emulator, driven over real loopback HTTP like the project's client drives PicWish."""

import base64
import functools
import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from PIL import Image

from restorations.engines import local
from restorations.engines.emulator import (
    DEFAULT_FAILURE_CODES,
    MB,
    PROGRESS_CURVES,
    EmulatorConfig,
    OverlapTracker,
    PicWishEmulator,
    RateLimiter,
    _BadRequest,
    _JobResult,
    _Task,
    is_final,
    parse_multipart,
    progress_at,
    snapshot,
)
from tests.factories import photo_bytes

ROOT = Path(__file__).resolve().parents[2]
KEY = "emulator-key"
DURATION = 0.2
DOCUMENTED_FAILURES = (-1, -2, -3, -5, -7, -8, -9, -10, -11, -13, -14, -15, -16, -17)
IN_PROGRESS = {0, 2, 3, 4, 5, 6}


@pytest.fixture
def emulator():
    config = EmulatorConfig(
        api_key=KEY, qps=1000, duration_min=DURATION, duration_max=DURATION, seed=11
    )
    with PicWishEmulator(config) as running:
        yield running


def api_client(url: str, key: str | None = KEY) -> httpx.Client:
    headers = {} if key is None else {"X-API-KEY": key}
    return httpx.Client(base_url=url, headers=headers, timeout=15, trust_env=False)


@pytest.fixture
def client(emulator):
    with api_client(emulator.url) as http:
        yield http


PHOTO = photo_bytes(64, 48)
SMALL_PHOTO = photo_bytes(32, 24)


def create(client, endpoint="scale", image=PHOTO, **fields) -> httpx.Response:
    files = [(name, (None, str(value))) for name, value in fields.items()]
    if image is not None:
        files.append(("image_file", ("photo.png", image, "image/png")))
    return client.post(f"/api/tasks/visual/{endpoint}", files=files)


def created_id(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == 200
    return body["data"]["task_id"]


def poll(client, task_id, endpoint="scale") -> httpx.Response:
    return client.get(f"/api/tasks/visual/{endpoint}/{task_id}")


def wait_final(client, task_id, endpoint="scale", seconds=15.0) -> tuple[dict, list[dict]]:
    """The final poll data and every poll data seen on the way."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = poll(client, task_id, endpoint)
        assert response.status_code == 200, response.text
        seen.append(response.json()["data"])
        if is_final(seen[-1]["state"]):
            return seen[-1], seen
        time.sleep(0.03)
    raise AssertionError(f"task {task_id} not final after {seconds} s: {seen[-1]}")


def wait_until(condition, seconds=15.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.03)
    raise AssertionError("condition not reached in time")


def error_of(response: httpx.Response) -> tuple[int, int]:
    return response.status_code, response.json()["status"]


# --- auth --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, "wrong-key"])
@pytest.mark.parametrize("kind", ["create", "poll"])
def test_requests_without_the_right_key_are_401(emulator, key, kind):
    with api_client(emulator.url, key) as stranger:
        response = create(stranger) if kind == "create" else poll(stranger, uuid.uuid4())
    assert error_of(response) == (401, 401)
    assert response.json()["message"]
    counters = emulator.counters()
    assert counters[kind] == {"401": 1}
    assert counters["tasks"] == {}


# --- a task's life -----------------------------------------------------------------------


def test_a_task_runs_to_completion_with_a_downloadable_result(emulator, client):
    task_id = created_id(create(client, scale_factor=4))
    final, seen = wait_final(client, task_id)

    assert final["state"] == 1 and final["progress"] == 100
    assert final["state_detail"] == "Complete" and final["return_type"] == 1
    assert {data["state"] for data in seen[:-1]} <= IN_PROGRESS
    progress = [data["progress"] for data in seen]
    assert progress == sorted(progress)
    assert all(isinstance(final[name], int) for name in ("created_at", "completed_at"))
    assert final["created_at"] <= final["processed_at"] <= final["completed_at"]
    assert final["time_elapsed"] >= DURATION

    download = httpx.get(final["image"], trust_env=False)  # no key needed
    assert download.status_code == 200
    assert download.headers["Content-Type"] == "image/png"
    assert int(download.headers["Content-Length"]) == len(download.content)
    expected = local.run(PHOTO, "scale", {"scale_factor": "4"}, source_format="PNG")
    assert download.content == expected.data
    with Image.open(io.BytesIO(download.content)) as image:
        assert image.size == (final["image_width"], final["image_height"]) == (256, 192)
    assert emulator.counters()["download"] == {"200": 1}


def test_return_type_2_puts_the_result_in_the_body_as_base64(client):
    task_id = created_id(create(client, "colorization", return_type=2, format="webp"))
    final, _ = wait_final(client, task_id, "colorization")
    data = base64.b64decode(final["image"], validate=True)
    assert data == local.run(PHOTO, "colorization", {"format": "webp"}, source_format="PNG").data
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "WEBP"
        assert image.size == (final["image_width"], final["image_height"])


def test_sync_create_answers_with_the_final_poll_body(emulator, client):
    started = time.monotonic()
    response = create(client, sync=1)
    assert time.monotonic() - started >= DURATION
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["state"] == 1 and data["image"].startswith(emulator.url)
    assert poll(client, data["task_id"]).json()["data"]["image"] == data["image"]

    emulator.script(outcomes=[-8])
    failed = create(client, sync=1).json()["data"]
    assert failed["state"] == -8 and "image" not in failed


def test_slots_hold_tasks_in_the_queue(emulator, client):
    emulator.configure(slots=1)
    task_ids = [created_id(create(client)) for _ in range(3)]
    assert poll(client, task_ids[2]).json()["data"]["state"] == 0
    for task_id in task_ids:
        wait_final(client, task_id)
    tasks = emulator.counters()["tasks"]
    starts = [tasks[task_id]["started_at"] for task_id in task_ids]
    completions = [tasks[task_id]["completed_at"] for task_id in task_ids]
    # One slot: each task starts when the one before it has finished processing.
    assert starts[1] >= starts[0] + DURATION - 1e-6 and starts[2] >= starts[1] + DURATION - 1e-6
    assert starts[1] <= completions[0] and starts[2] <= completions[1]


def test_each_tasks_polls_are_counted_with_their_times(emulator, client):
    polled, other = created_id(create(client)), created_id(create(client))
    before = time.time()
    poll(client, polled)
    poll(client, polled)
    counters = emulator.counters()
    assert counters["polls_per_task"] == {polled: 2}
    first, second = counters["tasks"][polled]["polled_at"]
    assert before <= first <= second <= time.time()
    assert counters["tasks"][other]["polled_at"] == []


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
    result = local.run(PHOTO, "scale", {}, source_format="PNG")
    job.set_result(_JobResult(done_at=115.0, result=result))
    done = snapshot(task, 116.0)
    assert (done.state, done.progress, done.completed_at, done.result) == (1, 100, 115.0, result)


def test_an_in_progress_outcome_never_ends():
    task = _timeline_task(outcome=4)
    assert (snapshot(task, 10_000.0).state, snapshot(task, 10_000.0).completed_at) == (4, 0)


# --- progress curves ---------------------------------------------------------------------

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
    task = _timeline_task(outcome=-8, progress_curve="plateaus")  # processing from 102 to 112
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
    linear, curved = (
        _timeline_task(outcome=1, job=_done_job()),
        _timeline_task(outcome=1, job=_done_job(), progress_curve=curve),
    )
    for tick in range(1500):
        now = 100 + tick / 100
        a, b = snapshot(linear, now), snapshot(curved, now)
        assert (a.state, a.processed_at, a.completed_at) == (
            b.state,
            b.processed_at,
            b.completed_at,
        )
    assert snapshot(curved, 113.0).progress == 100


def test_a_poll_reports_the_configured_curve(emulator, client):
    answer = httpx.post(
        f"{emulator.url}/_emulator/config", json={"progress_curve": "plateaus"}, trust_env=False
    )
    assert answer.json()["progress_curve"] == "plateaus"
    emulator.script(outcomes=[{"state": 1, "duration": 1.0}])
    final, seen = wait_final(client, created_id(create(client)))
    plateau = {2: {10}, 4: {40, 60}, 6: {40, 60}, 5: {90}, 0: {0}, 3: {0}}
    assert all(data["progress"] in plateau[data["state"]] for data in seen[:-1])
    assert {data["progress"] for data in seen} >= {10, 40, 60, 90}
    assert final["progress"] == 100

    emulator.configure(progress_curve="stuck")
    emulator.script(outcomes=[{"state": 1, "duration": 0.5}])
    final, seen = wait_final(client, created_id(create(client)))
    assert {data["progress"] for data in seen[:-1]} <= {0, 50} and final["progress"] == 100
    bad = httpx.post(
        f"{emulator.url}/_emulator/config", json={"progress_curve": "wobbly"}, trust_env=False
    )
    assert error_of(bad) == (400, 400) and "progress_curve" in bad.json()["message"]


def _done_job() -> Future:
    job: Future = Future()
    job.set_result(_JobResult(done_at=112.0, result=_scaled_photo()))
    return job


@functools.cache
def _scaled_photo() -> local.LocalResult:
    return local.run(PHOTO, "scale", {}, source_format="PNG")


def _timeline_task(
    outcome: int, processing_code: int = 4, job=None, progress_curve: str = "linear"
) -> _Task:
    return _Task(
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


# --- QPS ---------------------------------------------------------------------------------


def test_qps_admits_exactly_the_limit_in_a_rolling_second(emulator, client):
    task_id = created_id(create(client))
    emulator.configure(qps=2)
    time.sleep(1.05)  # let the create leave the window

    burst_started = time.monotonic()
    statuses = [poll(client, task_id).status_code for _ in range(10)]
    assert time.monotonic() - burst_started < 0.9, "the burst was too slow to test the window"
    assert statuses[:2] == [200, 200] and statuses[2:] == [429] * 8

    # Refused requests do not use the window: one second after the burst, two pass again.
    time.sleep(max(0.0, burst_started + 1.05 - time.monotonic()))
    assert [poll(client, task_id).status_code for _ in range(3)] == [200, 200, 429]
    counters = emulator.counters()
    assert counters["poll"] == {"200": 4, "429": 9}
    assert counters["rate_limited"] == 9
    assert counters["polls_per_task"][task_id] == 4


def test_a_429_answer_has_the_status_in_the_body(emulator, client):
    emulator.configure(qps=1)
    assert poll(client, uuid.uuid4()).status_code == 404
    assert error_of(poll(client, uuid.uuid4())) == (429, 429)


def test_rate_limiter_windows():
    limiter = RateLimiter()
    assert [limiter.admit("k", 2, now) for now in (0.0, 0.1, 0.5, 0.99)] == [
        True,
        True,
        False,
        False,
    ]
    assert limiter.admit("other", 2, 0.5)  # per key
    assert limiter.admit("k", 2, 1.0) and not limiter.admit("k", 2, 1.05)
    assert limiter.admit("k", 2, 1.1)
    slow = RateLimiter()  # below 1 QPS: one request per 1/qps seconds
    assert [slow.admit("k", 0.5, now) for now in (0.0, 1.5, 2.0)] == [True, False, True]


def test_rate_limiter_reports_the_tightest_span_of_qps_plus_one_requests():
    limiter = RateLimiter()
    for now in (0.0, 0.55, 1.1, 1.62):
        assert limiter.admit("k", 2, now)
    assert limiter.admit("other", 2, 1.0)  # other keys have their own sequence
    assert limiter.tightest_span == pytest.approx(1.07)  # 0.55 to 1.62
    assert not limiter.admit("k", 2, 2.0)  # refused requests arrived too
    assert limiter.tightest_span == pytest.approx(0.9)
    limiter.clear()
    assert limiter.tightest_span is None


# --- expiry ------------------------------------------------------------------------------


def test_result_url_expires_after_result_ttl(emulator, client):
    emulator.configure(result_ttl=0.5)
    final, _ = wait_final(client, created_id(create(client)))
    assert httpx.get(final["image"], trust_env=False).status_code == 200
    completed_at = emulator.counters()["tasks"][final["task_id"]]["completed_at"]
    time.sleep(max(0.0, completed_at + 0.55 - time.time()))
    assert httpx.get(final["image"], trust_env=False).status_code == 404
    counters = emulator.counters()
    assert counters["download"] == {"200": 1, "404": 1}
    assert counters["expired_downloads"] == 1


def test_a_scripted_expired_result_cannot_be_downloaded(emulator, client):
    emulator.script(outcomes=[{"state": 1, "duration": 0, "expire_result": True}])
    final, _ = wait_final(client, created_id(create(client)))
    assert final["state"] == 1
    assert httpx.get(final["image"], trust_env=False).status_code == 404
    assert emulator.counters()["expired_downloads"] == 1


def test_poll_of_an_unknown_task_is_404(client):
    assert error_of(poll(client, uuid.uuid4())) == (404, 404)
    task_id = created_id(create(client))
    assert error_of(poll(client, task_id, endpoint="colorization")) == (404, 404)


def test_tasks_are_gone_after_task_ttl(emulator, client):
    emulator.configure(task_ttl=0.4)
    task_id = created_id(create(client))
    assert poll(client, task_id).status_code == 200
    time.sleep(0.5)
    assert error_of(poll(client, task_id)) == (404, 404)


# --- validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("endpoint", "with_file", "fields", "named"),
    [
        ("scale", False, {"sync": 0}, "image_file"),
        ("scale", True, {"image_url": "http://127.0.0.1:9/p.png"}, "image_url"),
        ("restoration-old-photo", True, {"restoration_type": 3}, "restoration_type"),
        ("restoration-old-photo", True, {"change_color": "yes"}, "change_color"),
        ("scale", True, {"scale_factor": 3}, "scale_factor"),
        ("scale", True, {"type": "sharp"}, "type"),
        ("scale-pro", True, {"type": 2}, "type"),
        ("colorization", True, {"format": "gif"}, "format"),
        ("correction", True, {"type": 5}, "type"),
        ("scale", True, {"return_type": 3}, "return_type"),
        ("scale", True, {"sync": 2}, "sync"),
        ("scale", False, {"image_url": "ftp://127.0.0.1/p.png"}, "image_url"),
        ("scale", False, {"image_url": "http://127.0.0.1/" + "a" * 512}, "image_url"),
    ],
)
def test_missing_images_and_bad_values_are_400(
    emulator, client, endpoint, with_file, fields, named
):
    response = create(client, endpoint, PHOTO if with_file else None, **fields)
    assert error_of(response) == (400, 400)
    assert named in response.json()["message"]
    assert emulator.counters()["tasks"] == {}


def test_a_body_that_is_not_multipart_is_400(client):
    response = client.post("/api/tasks/visual/scale", data={"image_url": "http://127.0.0.1/a"})
    assert error_of(response) == (400, 400)


def test_an_unknown_endpoint_is_404(client):
    assert error_of(create(client, "remove-background")) == (404, 404)
    assert error_of(poll(client, uuid.uuid4(), "remove-background")) == (404, 404)


@pytest.mark.slow
def test_files_over_the_endpoint_byte_limit_are_413(emulator, client):
    # The size is checked before decoding, so padding a real photo is enough.
    oversized = PHOTO + b"\0" * (21 * MB - len(PHOTO))
    response = create(client, "restoration-old-photo", oversized)
    assert error_of(response) == (413, 413)
    assert str(20 * MB - 1) in response.json()["message"]
    assert create(client, "scale", oversized).status_code == 200  # scale takes 30 MB
    assert emulator.counters()["create"] == {"200": 1, "413": 1}


def test_images_over_the_pixel_limit_are_413(client):
    assert error_of(create(client, "restoration-old-photo", photo_bytes(2049, 8))) == (413, 413)
    assert create(client, "restoration-old-photo", photo_bytes(2048, 8)).status_code == 200


# --- task failures -----------------------------------------------------------------------


def test_scripted_outcomes_end_in_each_failure_code(emulator, client):
    emulator.script(outcomes=[{"state": code, "duration": 0} for code in DOCUMENTED_FAILURES])
    task_ids = [created_id(create(client)) for _ in DOCUMENTED_FAILURES]
    for code, task_id in zip(DOCUMENTED_FAILURES, task_ids, strict=True):
        final, _ = wait_final(client, task_id)
        assert final["state"] == code
        assert final["state_detail"] and final["state_detail"] != "Complete"
        assert final["completed_at"] > 0 and "image" not in final
    # The script is used up: the next task succeeds again.
    assert wait_final(client, created_id(create(client)))[0]["state"] == 1


@pytest.mark.parametrize(
    ("endpoint", "image"),
    [
        ("scale", PHOTO[: len(PHOTO) // 2]),  # a readable header, then the file is cut off
        ("scale", b"\x89PNG\r\n\x1a\n" + os.urandom(2000)),  # not even a header
        ("restoration-old-photo", photo_bytes(64, 48, fmt="WEBP")),  # a format it refuses
    ],
)
def test_an_unusable_image_ends_at_minus_7(client, endpoint, image):
    task_id = created_id(create(client, endpoint, image))
    assert wait_final(client, task_id, endpoint)[0]["state"] == -7


def test_image_url_is_fetched(emulator, client):
    first, _ = wait_final(client, created_id(create(client)))
    source = httpx.get(first["image"], trust_env=False).content
    task_id = created_id(create(client, "correction", None, image_url=first["image"]))
    final, _ = wait_final(client, task_id, "correction")
    assert final["state"] == 1
    result = httpx.get(final["image"], trust_env=False).content
    assert result == local.run(source, "correction", {}, source_format="PNG").data


def test_an_unreachable_image_url_ends_at_minus_3(client):
    task_id = created_id(create(client, image=None, image_url=f"http://127.0.0.1:{free_port()}/x"))
    assert wait_final(client, task_id)[0]["state"] == -3


@pytest.mark.slow
def test_an_image_url_over_30_mb_ends_at_minus_5(client):
    class Huge(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(30 * MB + 1))
            self.end_headers()
            self.wfile.write(PHOTO + b"\0" * (30 * MB + 1 - len(PHOTO)))

        def log_message(self, *args):
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Huge) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/huge.png"
        task_id = created_id(create(client, image=None, image_url=url))
        assert wait_final(client, task_id)[0]["state"] == -5
        server.shutdown()


def run_tasks(emulator, client, count: int) -> list[int]:
    task_ids = [created_id(create(client, image=SMALL_PHOTO)) for _ in range(count)]

    def all_final() -> bool:
        tasks = emulator.counters()["tasks"]
        return all(is_final(tasks[task_id]["state"]) for task_id in task_ids)

    wait_until(all_final)
    tasks = emulator.counters()["tasks"]
    return [tasks[task_id]["state"] for task_id in task_ids]


def test_failure_rate_fails_about_that_share_of_tasks(emulator, client):
    emulator.configure(failure_rate=0.3, duration_min=0, duration_max=0)
    states = run_tasks(emulator, client, 60)
    failures = [state for state in states if state != 1]
    # 60 draws at 0.3: mean 18, standard deviation 3.5; the bounds are over 3 deviations wide.
    assert 7 <= len(failures) <= 29
    assert set(failures) <= set(DEFAULT_FAILURE_CODES) and len(set(failures)) > 1
    assert states.count(1) == 60 - len(failures)


def test_the_seed_makes_outcomes_repeatable():
    config = EmulatorConfig(
        api_key=KEY, qps=1000, duration_min=0, duration_max=0, failure_rate=0.5, seed=5
    )
    runs = []
    for _ in range(2):
        with PicWishEmulator(config) as emulator, api_client(emulator.url) as http:
            runs.append(run_tasks(emulator, http, 12))
    assert runs[0] == runs[1] and len(set(runs[0])) > 1


def test_per_state_failure_rates(emulator, client):
    emulator.configure(failure_rates={-8: 0.5, -15: 0.5}, duration_min=0, duration_max=0)
    states = run_tasks(emulator, client, 20)
    assert set(states) == {-8, -15}


# --- faults ------------------------------------------------------------------------------


def test_a_scripted_drop_closes_the_connection_without_an_answer(emulator, client):
    task_id = created_id(create(client))
    emulator.script(poll=["drop"])
    with pytest.raises(httpx.TransportError):
        poll(client, task_id)
    assert poll(client, task_id).status_code == 200
    assert emulator.counters()["dropped"] == 1


def test_a_create_dropped_after_creating_leaves_an_orphan(emulator, client):
    emulator.script(create=["drop_after_create", "drop"])
    for _ in range(2):
        with pytest.raises(httpx.TransportError):
            create(client)
    counters = emulator.counters()
    assert counters["dropped"] == 2
    assert len(counters["orphans"]) == 1 and list(counters["tasks"]) == counters["orphans"]
    assert poll(client, counters["orphans"][0]).status_code == 200  # it exists upstream


def test_drop_rate_drops_creates_before_or_after_the_task_exists(emulator, client):
    emulator.configure(drop_rate=1.0)
    for _ in range(12):
        with pytest.raises(httpx.TransportError):
            create(client)
    counters = emulator.counters()
    assert counters["dropped"] == 12 and counters["create"] == {}
    assert 0 < len(counters["orphans"]) < 12
    assert sorted(counters["orphans"]) == sorted(counters["tasks"])


def test_500_answers_scripted_and_random(emulator, client):
    emulator.script(create=[500])
    assert error_of(create(client)) == (500, 500)
    task_id = created_id(create(client))
    emulator.configure(error_500_rate=1.0)
    assert error_of(poll(client, task_id)) == (500, 500)
    counters = emulator.counters()
    assert counters["create"] == {"200": 1, "500": 1} and counters["poll"] == {"500": 1}


@pytest.mark.parametrize("code", [400, 401, 404, 413, 429, 500])
@pytest.mark.parametrize("kind", ["create", "poll"])
def test_scripted_codes_answer_the_next_request_of_that_kind(emulator, client, code, kind):
    task_id = created_id(create(client))
    emulator.script(**{kind: [code]})
    send = (lambda: create(client)) if kind == "create" else (lambda: poll(client, task_id))
    assert error_of(send()) == (code, code)
    assert send().status_code == 200
    assert emulator.counters()["rate_limited"] == (1 if code == 429 else 0)


def test_error_answers_can_come_as_http_200_with_the_code_in_the_body(emulator, client):
    emulator.configure(body_status_mismatch_rate=1.0)
    with api_client(emulator.url, key=None) as keyless:
        response = poll(keyless, uuid.uuid4())
    assert response.status_code == 200 and response.json()["status"] == 401
    assert create(client).json()["status"] == 200  # successes are unaffected
    counters = emulator.counters()
    assert counters["mismatched"] == 1 and counters["poll"] == {"401": 1}


# --- concurrent polls --------------------------------------------------------------------


def test_concurrent_polls_of_one_task_are_detected(emulator, client):
    task_id = created_id(create(client))
    emulator.configure(latency=0.3)
    poll(client, task_id)
    poll(client, task_id)
    assert emulator.counters()["max_concurrent_polls_per_task"] == 1

    barrier = threading.Barrier(2)

    def poll_at_once() -> None:
        with api_client(emulator.url) as own:
            barrier.wait()
            assert poll(own, task_id).status_code == 200

    threads = [threading.Thread(target=poll_at_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counters = emulator.counters()
    assert counters["max_concurrent_polls_per_task"] == 2
    assert counters["polls_per_task"][task_id] == 4


def test_overlap_tracker_counts_overlaps_per_key():
    tracker = OverlapTracker()
    with tracker.track("a"), tracker.track("b"):
        pass
    assert tracker.max_seen == 1
    with tracker.track("a"), tracker.track("a"), tracker.track("a"):
        pass
    with tracker.track("a"):
        pass
    assert tracker.max_seen == 3


def test_starting_twice_keeps_one_server():
    emulator = PicWishEmulator(EmulatorConfig(api_key=KEY)).start()
    with emulator.start() as same:
        assert same is emulator and same.url == emulator.url
        assert api_client(same.url).get("/_emulator/counters").status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{emulator.url}/_emulator/counters", trust_env=False)


# --- control API -------------------------------------------------------------------------


def test_config_changes_at_run_time(emulator, client):
    response = httpx.post(
        f"{emulator.url}/_emulator/config", json={"api_key": "rotated", "qps": 50}, trust_env=False
    )
    assert response.status_code == 200
    config = response.json()
    assert config["api_key"] == "rotated" and config["qps"] == 50
    assert set(config) == set(vars(EmulatorConfig()))
    assert error_of(create(client)) == (401, 401)
    with api_client(emulator.url, "rotated") as rotated:
        assert rotated.get(f"/api/tasks/visual/scale/{uuid.uuid4()}").status_code == 404

    for bad in ({"qps": 0}, {"no_such_field": 1}, {"failure_rates": {"-8": 2}}):
        answer = httpx.post(f"{emulator.url}/_emulator/config", json=bad, trust_env=False)
        assert error_of(answer) == (400, 400)
    assert emulator.config.qps == 50


def test_reset_clears_tasks_and_counters_but_keeps_config(emulator, client):
    emulator.configure(slots=2)
    task_id = created_id(create(client))
    emulator.script(poll=[500])
    assert httpx.post(f"{emulator.url}/_emulator/reset", trust_env=False).status_code == 200
    counters = httpx.get(f"{emulator.url}/_emulator/counters", trust_env=False).json()
    assert counters["tasks"] == {} and counters["create"] == {}
    assert error_of(poll(client, task_id)) == (404, 404)  # not the scripted 500
    assert emulator.config.slots == 2


def test_script_over_http_and_its_validation(emulator, client):
    script = {"create": [429], "outcomes": [-10, {"state": 1, "duration": 0}]}
    answer = httpx.post(f"{emulator.url}/_emulator/script", json=script, trust_env=False)
    assert answer.json() == {"create": 1, "poll": 0, "outcomes": 2}
    assert error_of(create(client)) == (429, 429)
    states = [wait_final(client, created_id(create(client)))[0]["state"] for _ in range(2)]
    assert states == [-10, 1]
    for bad in ({"poll": ["drop_after_create"]}, {"create": [418]}, {"outcomes": ["x"]}):
        answer = httpx.post(f"{emulator.url}/_emulator/script", json=bad, trust_env=False)
        assert error_of(answer) == (400, 400)


# --- multipart parsing -------------------------------------------------------------------


def test_multipart_parser_keeps_binary_content_intact():
    binary = b"\r\n--not-the-boundary\r\n\x00\xff"
    body = (
        b"preamble\r\n--XyZ\r\n"
        b'Content-Disposition: form-data; name="sync"\r\n\r\n1\r\n'
        b"--XyZ\r\n"
        b'Content-Disposition: form-data; name="image_file"; filename="a.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + binary + b"\r\n--XyZ--\r\nepilogue"
    )
    fields = parse_multipart('multipart/form-data; boundary="XyZ"', body)
    assert fields == {"sync": b"1", "image_file": binary}
    with pytest.raises(_BadRequest):
        parse_multipart("multipart/form-data; boundary=XyZ", body.split(b"\r\n--XyZ--")[0])


# --- management command ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_management_command_serves_until_terminated():
    port = free_port()
    environ = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings.test"}
    args = [sys.executable, str(ROOT / "manage.py"), "picwish_emulator", "--port", str(port)]
    args += ["--key", "cli-key", "--qps", "50", "--duration-min", "0", "--duration-max", "0"]
    args += ["--fail-code", "-8=1", "--progress-curve", "stuck"]
    process = subprocess.Popen(
        args, cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        with api_client(url, "cli-key") as cli:
            wait_until(lambda: _answers(cli), seconds=30)
            assert cli.post("/_emulator/config", json={}).json()["progress_curve"] == "stuck"
            final, _ = wait_final(cli, created_id(create(cli)))
        assert final["state"] == -8
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert url in stdout and "cli-key" in stdout


def _answers(client) -> bool:
    try:
        return client.get("/_emulator/counters").status_code == 200
    except httpx.TransportError:
        return False
