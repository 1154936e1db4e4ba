"""The emulator over real loopback HTTP: auth, a task's life, QPS, expiry, failures, faults."""

import base64
import io
import os
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from PIL import Image

from emulator import DEFAULT_FAILURE_CODES, MB, EmulatorConfig, PicWishEmulator, is_final
from restorations.engines import local
from tests.emulator.support import (
    DURATION,
    KEY,
    PHOTO,
    SMALL_PHOTO,
    api_client,
    create,
    created_id,
    error_of,
    free_port,
    poll,
    wait_final,
    wait_until,
)
from tests.factories import photo_bytes

DOCUMENTED_FAILURES = (-1, -2, -3, -5, -7, -8, -9, -10, -11, -13, -14, -15, -16, -17)
IN_PROGRESS = {0, 2, 3, 4, 5, 6}


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


def test_starting_twice_keeps_one_server():
    emulator = PicWishEmulator(EmulatorConfig(api_key=KEY)).start()
    with emulator.start() as same:
        assert same is emulator and same.url == emulator.url
        assert api_client(same.url).get("/_emulator/counters").status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{emulator.url}/_emulator/counters", trust_env=False)
