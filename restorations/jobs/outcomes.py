"""What became of a batch's photos: each photo's latest attempt, counted by state group, with
the failures grouped by their reason.

A photo counts once, by its latest attempt: a retry replaces the attempt it retries, so a photo
that failed and then succeeded is done, and "retry" offers only failures nothing has retried
since (never the same photo twice).
"""

import hashlib
from dataclasses import dataclass

from restorations.jobs import services, states
from restorations.jobs.models import Batch, Task


@dataclass(frozen=True)
class FailureGroup:
    reason: str
    advice: str
    tasks: list[Task]
    retriable: list[Task]  # those a retry can help

    @property
    def count(self) -> int:
        return len(self.tasks)


@dataclass(frozen=True)
class Outcome:
    photos: list[Task]  # each photo's latest attempt, in the order the photos were uploaded
    counts: dict[str, int]  # state group → photos, every group present
    failures: list[FailureGroup]  # largest first

    @property
    def retriable(self) -> list[Task]:
        return [task for group in self.failures for task in group.retriable]

    @property
    def photos_in_flight(self) -> list[Task]:
        return [task for task in self.photos if not task.is_final]

    @property
    def in_flight(self) -> bool:
        return bool(self.photos_in_flight)

    @property
    def failures_version(self) -> str:
        """Changes whenever the failure groups would read differently, so that the page's
        script replaces them only then (a form's token changes on every render)."""
        parts = [
            f"{group.reason}|{','.join(str(t.public_id) for t in group.tasks)}|"
            f"{','.join(str(t.public_id) for t in group.retriable)}"
            for group in self.failures
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def latest_attempts(batch: Batch) -> list[Task]:
    """The newest attempt of each photo of the batch, in the order the photos were uploaded,
    with its upload and team: one query, however many photos."""
    return list(
        batch.tasks.latest_attempts()
        .select_related("upload", "team")
        .order_by("upload__created_at", "upload_id")
    )


def of_batch(batch: Batch) -> Outcome:
    photos = latest_attempts(batch)
    counts = {group.value: 0 for group in states.Group}
    failed: dict[tuple[str, str], list[Task]] = {}
    for task in photos:
        counts[task.group] += 1
        if task.group == states.Group.FAILED:
            info = task.state_info
            failed.setdefault((info.reason, info.advice), []).append(task)
    failures = [
        # A latest attempt is never retried: whether a retry would help is all there is to ask.
        FailureGroup(reason, advice, tasks, [t for t in tasks if services.retry_would_help(t)])
        for (reason, advice), tasks in failed.items()
    ]
    failures.sort(key=lambda group: -group.count)  # stable: equal counts keep upload order
    return Outcome(photos, counts, failures)
