"""The one access check for tasks and batches, used by every view, download and command.

Outsiders get 404 (a task's existence is not revealed); viewers get 403 on changes. Asked for
many tasks at once (the live updates, the list's bulk actions), it leaves out the ones the user
may not see, so the answer is the same as for ids that do not exist.
"""

import uuid

from django.core.exceptions import PermissionDenied
from django.http import Http404
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


def require_write(team, user) -> None:
    if team.role_of(user) not in WRITE_ROLES:
        raise PermissionDenied("Viewers cannot upload photos to this team.")


def _visible_batches(user):
    return Batch.objects.visible_to(user).select_related("team", "created_by")


def batch_for_user(user, public_id) -> Batch:
    """A batch of one of the user's teams (any role: its page and download only read); 404 for
    anyone else, as for tasks."""
    return get_object_or_404(_visible_batches(user), public_id=public_id)


def visible_batch(user, public_id: str) -> Batch | None:
    """The batch, or None when it is not one of the user's teams' (or not a batch id at all):
    for the live answer, which leaves out what the user may not see."""
    try:
        public_id = uuid.UUID(str(public_id))
    except ValueError:
        return None
    return _visible_batches(user).filter(public_id=public_id).first()


def upload_batch(team, token) -> Batch | None:
    """The batch an upload token names, for adding a photo of `team` to it (after
    `require_write`): None while no photo of the upload is stored yet; 404 when the token is
    another team's batch."""
    batch = Batch.objects.filter(public_id=token).first()
    if batch is not None and batch.team_id != team.pk:
        raise Http404("No such upload.")
    return batch
