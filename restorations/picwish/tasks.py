"""Celery entry points of the PicWish integration. Each takes a primary key, claims its work with
a conditional update and is safe to run twice (acks_late redelivers a task whose worker died).
Nothing imports this module; the dispatcher sends these by name (`restorations.jobs.queue`)."""

from celery import shared_task

from restorations.jobs import queue
from restorations.picwish import fetch as fetching
from restorations.picwish import poll as polling
from restorations.picwish import send as sending


@shared_task(name=queue.PICWISH_SEND)
def send(task_pk: int, slot_at: float | None = None) -> None:
    """Create a waiting task at PicWish in the rate-limiter slot the dispatcher booked for it
    (`slot_at`, Unix time)."""
    sending.send(task_pk, slot_at)


@shared_task(name=queue.PICWISH_POLL)
def poll(task_pk: int, lease: str, slot_at: float) -> None:
    polling.poll(task_pk, lease, slot_at)


@shared_task(name=queue.PICWISH_FETCH)
def fetch(task_pk: int, lease: str, slot_at: float | None = None) -> None:
    fetching.fetch(task_pk, lease)
