"""The task list's query: filters, search and keyset ("cursor") pagination.

A page is the 50 tasks just older (or newer) than a cursor, the (created_at, id) of the row it
continues from, read from the team's index in that order. Page 1000 costs what page 1 costs,
and a task uploaded while someone reads page 1 does not push a row from page 1 onto page 2.
"""

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q, QuerySet

from restorations.jobs import states
from restorations.jobs.models import Batch, Task
from restorations.jobs.operations import Operation

PAGE_SIZE = 50
OLDER, NEWER = "older", "newer"  # the query-string names of the two cursors


@dataclass(frozen=True)
class Filters:
    group: str = ""
    operation: str = ""
    batch: str = ""  # a Batch's public id
    search: str = ""

    @classmethod
    def from_query(cls, query) -> "Filters":
        """Values the page does not offer are dropped rather than refused: a stale link still
        shows the list."""
        group = query.get("group", "")
        operation = query.get("operation", "")
        return cls(
            group=group if group in states.Group.values else "",
            operation=operation if operation in Operation.values else "",
            batch=query.get("batch", "") if _is_uuid(query.get("batch", "")) else "",
            search=query.get("q", "").strip()[:100],
        )

    @property
    def active(self) -> bool:
        return bool(self.group or self.operation or self.batch or self.search)

    def apply(self, tasks: QuerySet) -> QuerySet:
        if self.group:
            tasks = tasks.filter(states.GROUP_QUERIES[states.Group(self.group)])
        if self.operation:
            tasks = tasks.filter(operation=self.operation)
        if self.batch:
            tasks = tasks.filter(batch__public_id=self.batch)
        if self.search:
            # UPPER(name) LIKE UPPER('%…%') on PostgreSQL: the trigram index upload_name_trgm.
            tasks = tasks.filter(upload__original_name__icontains=self.search)
        return tasks

    def query(self) -> dict:
        """The filters as the query string that keeps them, for the Newer/Older links."""
        pairs = {
            "group": self.group,
            "operation": self.operation,
            "batch": self.batch,
            "q": self.search,
        }
        return {name: value for name, value in pairs.items() if value}

    def batch_shown(self, team) -> Batch | None:
        if not self.batch:
            return None
        return Batch.objects.filter(team=team, public_id=self.batch).first()


@dataclass(frozen=True)
class Page:
    tasks: list[Task]
    older: str | None  # the cursor of the next older page, None on the last one
    newer: str | None  # the cursor of the next newer page, None on the first one


def encode_cursor(task: Task) -> str:
    raw = json.dumps([task.created_at.isoformat(), task.pk]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int] | None:
    """The (created_at, id) a cursor names; None for anything else (the list starts over)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, pk = json.loads(raw)
        return datetime.fromisoformat(created_at), int(pk)
    except (binascii.Error, ValueError, TypeError):
        return None


def _older_than(created_at, pk) -> Q:
    # The first condition is implied by the other two; it gives the database the start of the
    # index range, so it reads from the cursor on instead of skipping the rows before it.
    return Q(created_at__lte=created_at) & (
        Q(created_at__lt=created_at) | Q(created_at=created_at, pk__lt=pk)
    )


def _newer_than(created_at, pk) -> Q:
    return Q(created_at__gte=created_at) & (
        Q(created_at__gt=created_at) | Q(created_at=created_at, pk__gt=pk)
    )


def page(tasks: QuerySet, query) -> Page:
    """The page `query` asks for (its `older` or `newer` cursor), newest first. One query for
    the rows (one more than a page says whether there is another) and, after a cursor, one
    asking whether anything lies on the other side."""
    size = PAGE_SIZE
    newest_first = tasks.order_by("-created_at", "-pk")
    newer_key = decode_cursor(query.get(NEWER, ""))
    older_key = None if newer_key else decode_cursor(query.get(OLDER, ""))
    if newer_key:
        rows = list(tasks.filter(_newer_than(*newer_key)).order_by("created_at", "pk")[: size + 1])
        more, rows = len(rows) > size, rows[:size][::-1]
        older = bool(rows) and (
            newest_first.filter(_older_than(rows[-1].created_at, rows[-1].pk)).exists()
        )
        return Page(
            rows,
            older=encode_cursor(rows[-1]) if older else None,
            newer=encode_cursor(rows[0]) if more else None,
        )
    if older_key:
        newest_first = newest_first.filter(_older_than(*older_key))
    rows = list(newest_first[: size + 1])
    more, rows = len(rows) > size, rows[:size]
    # exists(), never the queryset's truth: that would read every newer row.
    newer = bool(older_key and rows) and (
        tasks.filter(_newer_than(rows[0].created_at, rows[0].pk)).exists()
    )
    return Page(
        rows,
        older=encode_cursor(rows[-1]) if more else None,
        newer=encode_cursor(rows[0]) if newer else None,
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
