"""The control API under /_emulator/: counters, run-time config, reset and scripts (no key)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .replies import Reply, error, json_reply

if TYPE_CHECKING:
    from .server import PicWishEmulator

PREFIX = "/_emulator/"


def control(emulator: PicWishEmulator, method: str, action: str, body: bytes | None) -> Reply:
    """Answer one control request; `action` is the path after PREFIX."""
    if method == "GET" and action == "counters":
        return json_reply(200, emulator.counters())
    if method != "POST" or action not in ("config", "reset", "script"):
        return error(404, "Unknown control action.")
    try:
        payload = json.loads(body or b"{}")
        if not isinstance(payload, dict):
            raise ValueError("The body must be a JSON object.")
        return json_reply(200, _act(emulator, action, payload))
    except (ValueError, TypeError) as problem:
        return error(400, str(problem))


def _act(emulator: PicWishEmulator, action: str, payload: dict[str, Any]) -> dict[str, Any]:
    if action == "config":
        return emulator.configure(**payload).as_json()
    if action == "reset":
        emulator.reset()
        return {"reset": True}
    unknown = set(payload) - {"create", "poll", "outcomes"}
    if unknown:
        raise ValueError(f"Unknown script keys: {', '.join(sorted(unknown))}")
    return emulator.script(**payload)
