"""A task's timeline in plain words: one entry per TaskEvent, with its time.

What a state change means ("Sent to PicWish", "PicWish is processing it", "Result saved") comes
from the state table (`StateInfo.milestone`), so the words for a code live in one place. This
module adds the words of events that are not state changes (a 429, an error tried again, a
retry, the retention job) and names the engine and the person.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from restorations.jobs import states
from restorations.jobs.models import Engine, EventKind, Task, TaskEvent

# How an engine is named inside a sentence.
ENGINE_IN_WORDS = {Engine.PICWISH: "PicWish", Engine.LOCAL: "the built-in engine"}
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Entry:
    at: datetime
    what: str  # "PicWish is processing it"
    detail: str = ""  # what the event recorded, for the curious: "PicWish task 8f3…"
    by: str = ""  # the person, when a person acted
    category: str = ""  # the state table's category when the entry reached a state
    link: Task | None = None  # the attempt a retry made


def entries(task: Task, events, *, attempt: int = 1) -> list[Entry]:
    """The timeline of `task`, attempt number `attempt` at its photo, from its `events`."""
    retries = {str(retry.public_id): retry for retry in task.retries.all()}
    return [_entry(task, event, retries, attempt) for event in events]


def _entry(task: Task, event: TaskEvent, retries: dict, attempt: int) -> Entry:
    engine = ENGINE_IN_WORDS.get(task.engine, task.engine)
    reached = event.to_state is not None and event.to_state != event.from_state
    info = states.describe(event.to_state) if reached else None
    milestone = info.said_of(engine) if info else ""
    by = str(event.actor) if event.actor else ""
    what, detail, link = milestone, event.message, None
    if event.kind == EventKind.CREATED:
        what = "Retry created" if task.retry_of_id else "Uploaded"
        detail = milestone
    elif event.kind == EventKind.SUBMITTED:
        what = f"Sent to {engine}"
        detail = _joined(milestone, event.message)
    elif event.kind == EventKind.RATE_LIMITED:
        what = f"{engine[:1].upper()}{engine[1:]} asked to slow down; waiting a moment"
    elif event.kind == EventKind.ERROR:
        what = "A problem; trying again"
    elif event.kind == EventKind.RETRIED:
        match = _UUID.search(event.message)
        link = retries.get(match.group(0)) if match else None
        what = f"Retried as attempt {attempt + 1}" if link else "Retried"
        detail = "" if event.actor else "Automatically, as the problem was temporary"
    elif event.kind == EventKind.FILES_DELETED:
        what = "Files deleted"
    elif event.kind == EventKind.REVIEWED:
        what = "Reviewed"
    elif not milestone:
        what = event.get_kind_display()
    if detail == what:
        detail = ""
    return Entry(
        at=event.created_at,
        what=what,
        detail=detail,
        by=by,
        category=info.category if info else "",
        link=link,
    )


def _joined(*parts: str) -> str:
    return "; ".join(part for part in parts if part)
