"""The answers the emulator sends: JSON bodies in PicWish's shape, or no answer at all."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .states import state_detail
from .timeline import Snapshot, Task


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    drop: bool = False  # close the connection without answering
    created_task: str | None = None


DROPPED = Reply(0, drop=True)

SCRIPTED_MESSAGES = {
    400: "Bad request (scripted)",
    401: "Unauthorized API key (scripted)",
    404: "Not found (scripted)",
    413: "The file is too large (scripted)",
    429: "Too many requests (scripted)",
    500: "Internal server error (scripted)",
}


def json_reply(status: int, payload: dict[str, Any], created_task: str | None = None) -> Reply:
    return Reply(status, json.dumps(payload).encode(), created_task=created_task)


def error(status: int, message: str) -> Reply:
    return json_reply(status, {"status": status, "message": message})


def created(task_id: str) -> Reply:
    data = {"task_id": task_id}
    return json_reply(200, {"status": 200, "message": "success", "data": data}, task_id)


def poll_body(task: Task, current: Snapshot, image: str | None) -> dict[str, Any]:
    """The poll answer's body; `image` (URL or base64) only once the result exists."""
    data: dict[str, Any] = {
        "task_id": task.task_id,
        "state": current.state,
        "state_detail": state_detail(current.state),
        "progress": current.progress,
        "return_type": task.return_type,
        "created_at": int(task.created_at),
        "processed_at": int(current.processed_at),
        "completed_at": int(current.completed_at),
    }
    if current.result is not None:
        data.update(
            image=image,
            image_width=current.result.width,
            image_height=current.result.height,
            time_elapsed=round(current.completed_at - current.processed_at, 3),
        )
    return {"status": 200, "message": "success", "data": data}
