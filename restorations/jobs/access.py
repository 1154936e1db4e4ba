"""The one access check for tasks, used by every view, download and command.

Outsiders get 404 (a task's existence is not revealed); viewers get 403 on changes.
"""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from restorations.accounts.models import WRITE_ROLES
from restorations.jobs.models import Task


def task_for_user(user, public_id, *, write: bool = False) -> Task:
    task = get_object_or_404(
        Task.objects.visible_to(user).select_related("upload", "team", "retry_of"),
        public_id=public_id,
    )
    if write and task.team.role_of(user) not in WRITE_ROLES:
        raise PermissionDenied("Viewers cannot change tasks.")
    return task


def require_write(team, user) -> None:
    if team.role_of(user) not in WRITE_ROLES:
        raise PermissionDenied("Viewers cannot upload photos to this team.")
