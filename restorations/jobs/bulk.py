"""Actions on the tasks ticked in the list: retry, cancel, delete.

An action applies to exactly the posted ids, never to "everything matching the filter", so what
a person confirmed is what happens. The caller gets the tasks from the access module (ids the
user may not see are left out, viewers are refused); each task then goes through the same
service as on its own page, and the outcome counts what happened and what did not.
"""

from collections.abc import Callable
from dataclasses import dataclass

from restorations.jobs import services
from restorations.jobs.models import Task


def _retry(task: Task, user) -> bool:
    if not services.can_retry(task):
        return False
    return services.retry(task, user) is not None


def _delete(task: Task, user) -> bool:
    return services.delete(task)


@dataclass(frozen=True)
class Action:
    verb: str  # "Cancel", for the confirmation: "Cancel 3 photos?"
    done: str  # "canceled", for the outcome: "3 canceled"
    not_done: str  # "had already finished": "1 had already finished"
    run: Callable[[Task, object], bool]  # True when it happened to this task


ACTIONS = {
    "retry": Action("Retry", "sent again", "could not be retried", _retry),
    "cancel": Action("Cancel", "canceled", "had already finished", services.cancel),
    "delete": Action("Delete", "deleted", "still in progress (cancel it first)", _delete),
}


def photos(count: int) -> str:
    return f"{count} photo{'' if count == 1 else 's'}"


def question(action: Action, count: int) -> str:
    return f"{action.verb} {photos(count)}?"


def apply(action: Action, tasks: list[Task], user) -> str:
    """Run `action` on each task; the outcome in words: "3 canceled, 1 had already finished"."""
    done = sum(1 for task in tasks if action.run(task, user))
    parts = [f"{done} {action.done}" if done else ""]
    if skipped := len(tasks) - done:
        parts.append(f"{skipped} {action.not_done}")
    return ", ".join(part for part in parts if part) + "."
