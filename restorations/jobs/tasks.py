"""Celery entry points of the jobs app, both run by beat: the dispatcher and the retention job.
Nothing imports this module."""

from celery import shared_task

from restorations.jobs import dispatch, queue, retention


@shared_task(name=queue.DISPATCH_DUE)
def dispatch_due() -> int:
    return dispatch.dispatch_due()


@shared_task(name=queue.DELETE_EXPIRED_FILES)
def delete_expired_files() -> int:
    return retention.delete_expired()
