"""Messages to the Celery entry points, sent by task name.

The entry points (`restorations/*/tasks.py`) import the domain; nothing imports them, so no
domain module knows Celery's wiring. Each name here is declared by its `@shared_task(name=...)`,
and a test checks that every one is registered.
"""

from celery import current_app
from django.db import transaction

DISPATCH_DUE = "jobs.dispatch_due"
DELETE_EXPIRED_FILES = "jobs.delete_expired_files"
RUN_LOCAL = "engines.run_local"
PICWISH_SEND = "picwish.send"
PICWISH_POLL = "picwish.poll"
PICWISH_FETCH = "picwish.fetch"
NAMES = (DISPATCH_DUE, DELETE_EXPIRED_FILES, RUN_LOCAL, PICWISH_SEND, PICWISH_POLL, PICWISH_FETCH)


def send(name: str, *args) -> None:
    app = current_app
    if app.conf.task_always_eager:  # run in-process, as `.delay` does in eager mode
        app.loader.import_default_modules()
        app.tasks[name].apply(args=args)
        return
    app.send_task(name, args=args)


def send_on_commit(name: str, *args) -> None:
    """Send once the current transaction commits, so the worker finds the rows it is sent."""
    transaction.on_commit(lambda: send(name, *args))
