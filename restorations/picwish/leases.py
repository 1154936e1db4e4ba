"""Leases: how one worker holds a PicWish task while it sends, polls or fetches it.

A claim sets `lease_expires_at`; its value is the claim's token, passed to the worker, and
every write the worker makes at the end checks it, so a worker that lost its lease (it was too
slow, or died and came back) changes nothing. A lease that runs out hands the task back to the
dispatcher.
"""

import random
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from restorations.jobs.models import Task
from restorations.picwish import accounts, client

# Failed requests in a row before a task fails: server errors, lost answers, and anything else
# that stops a send (a missing original, a key that cannot be sent in a header, Redis down).
MAX_FAULTS = 5
# A send holds its task for at least as long as the slowest send allowed can take: the wait
# for a slot, then a create bounded by the client (connect, upload of a 30 MB photo, answer),
# with a margin for a busy machine.
SLOWEST_SEND = accounts.ACQUIRE_TIMEOUT + client.MAX_CREATE_SECONDS + 30.0


def lease_length() -> timedelta:
    """How long a poll or a fetch holds its task (PICWISH_LEASE_SECONDS)."""
    return timedelta(seconds=settings.PICWISH_LEASE_SECONDS)


def send_lease_length() -> timedelta:
    return timedelta(seconds=max(settings.PICWISH_LEASE_SECONDS, SLOWEST_SEND))


def later(seconds: float):
    return timezone.now() + timedelta(seconds=seconds)


def backoff(faults: int) -> float:
    """Exponential backoff with jitter: about 1, 2, 4 ... 60 base units at most."""
    base = settings.PICWISH_BACKOFF_SECONDS
    return base * random.uniform(0.5, 1.0) * min(60.0, 2.0 ** max(0, faults - 1))


def claim(task_pk: int, state: int, *, lease) -> bool:
    """Lease a task in `state` if nobody holds it; the lease's expiry is the claim's token."""
    now = timezone.now()
    return bool(
        Task.objects.filter(pk=task_pk, state=state)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now))
        .update(lease_expires_at=lease, next_poll_at=lease, updated_at=now)
    )


def holding(task_pk: int, lease_token: str) -> Task | None:
    """The task if our lease still holds it (nobody took it over after a timeout)."""
    task = Task.objects.select_related("team", "upload").filter(pk=task_pk).first()
    if task is None or task.lease_expires_at is None:
        return None
    if task.lease_expires_at.isoformat() != lease_token or task.lease_expires_at < timezone.now():
        return None
    return task


def release(task: Task, *, next_poll_in: float, **fields) -> bool:
    """Give a held task back to the dispatcher, to be looked at again after `next_poll_in` s,
    in the state it is in (a state change goes through transitions.move instead)."""
    return bool(
        Task.objects.filter(
            pk=task.pk, state=task.state, lease_expires_at=task.lease_expires_at
        ).update(
            lease_expires_at=None,
            next_poll_at=later(next_poll_in),
            updated_at=timezone.now(),
            **fields,
        )
    )
