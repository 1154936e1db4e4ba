"""Driving the emulator over real loopback HTTP, as the project's client drives PicWish."""

import socket
import time

import httpx

from emulator import is_final
from tests.factories import photo_bytes

KEY = "emulator-key"
DURATION = 0.2


PHOTO = photo_bytes(64, 48)
SMALL_PHOTO = photo_bytes(32, 24)


def api_client(url: str, key: str | None = KEY) -> httpx.Client:
    headers = {} if key is None else {"X-API-KEY": key}
    return httpx.Client(base_url=url, headers=headers, timeout=15, trust_env=False)


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


def control(emulator, action: str, payload: dict | None = None) -> httpx.Response:
    return httpx.post(f"{emulator.url}/_emulator/{action}", json=payload, trust_env=False)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
