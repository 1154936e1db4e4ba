"""Celery entry point of the dispatcher (beat). Nothing imports this module."""

from celery import shared_task

from restorations.jobs import dispatch, queue


@shared_task(name=queue.DISPATCH_DUE)
def dispatch_due() -> int:
    return dispatch.dispatch_due()
