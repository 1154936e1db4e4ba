"""The one access check for tasks and batches, used by every view, download and command.

Outsiders get 404 (a task's existence is not revealed); viewers get 403 on changes. Asked for
many tasks at once (the live updates, the list's bulk actions), it leaves out the ones the user
may not see, so the answer is the same as for ids that do not exist.
"""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from restorations.accounts.models import WRITE_ROLES, Membership
from restorations.jobs.models import Batch, Task


def _visible(user):
    return Task.objects.visible_to(user).select_related("upload", "team", "retry_of")


def task_for_user(user, public_id, *, write: bool = False) -> Task:
    task = get_object_or_404(_visible(user), public_id=public_id)
    if write and task.team.role_of(user) not in WRITE_ROLES:
        raise PermissionDenied("Viewers cannot change tasks.")
    return task


def tasks_for_user(user, public_ids, *, write: bool = False) -> list[Task]:
    """The tasks among `public_ids` the user may see, newest first; with `write`, 403 if any of
    them belongs to a team where the user only reads."""
    tasks = list(_visible(user).filter(public_id__in=list(public_ids)).order_by("-created_at"))
    if write and tasks:
        teams = {task.team_id for task in tasks}
        read_only = Membership.objects.filter(user=user, team_id__in=teams).exclude(
            role__in=WRITE_ROLES
        )
        if read_only.exists():
            raise PermissionDenied("Viewers cannot change tasks.")
    return tasks


def batch_for_user(user, public_id) -> Batch:
    """A batch of one of the user's teams (any role: downloading only reads), else 404."""
    return get_object_or_404(
        Batch.objects.visible_to(user).select_related("team"), public_id=public_id
    )


def require_write(team, user) -> None:
    if team.role_of(user) not in WRITE_ROLES:
        raise PermissionDenied("Viewers cannot upload photos to this team.")
