"""Celery entry point of the built-in engine, on its own queue (`local_engine`). Nothing imports
this module; `restorations.jobs.local_runs` does the work."""

from celery import shared_task

from restorations.jobs import local_runs, queue


@shared_task(name=queue.RUN_LOCAL)
def run_local(task_pk: int) -> None:
    local_runs.run(task_pk)
