"""The one dispatcher: run by beat every DESK_DISPATCH_INTERVAL seconds, it acts on every active
task whose `next_poll_at` is due, whichever engine it is on.

PicWish work (sends, polls, fetches) is booked with the key's rate limiter by
`restorations.picwish.dispatch`; a local task is due only when its message or its worker was
lost, and is queued again; a send whose worker died is taken back.
"""

from django.db.models import Q
from django.utils import timezone

from restorations.jobs import local_runs
from restorations.jobs.models import Engine, Task
from restorations.jobs.states import State
from restorations.picwish import dispatch as picwish_dispatch
from restorations.picwish import send

BATCH = 200


def dispatch_due() -> int:
    """Hand out what is due; returns how many tasks were handed out."""
    now = timezone.now()
    due = (
        Task.objects.active()
        .filter(next_poll_at__lte=now)
        .filter(Q(engine=Engine.LOCAL) | Q(state=State.SENDING))
        .order_by("next_poll_at")[:BATCH]
    )
    count = 0
    for task in due:
        if task.state == State.SENDING:
            send.take_back(task, now)
        else:
            local_runs.take_back(task, now)
        count += 1
    return count + picwish_dispatch.dispatch(now, batch=BATCH)
