"""A batch's page: what became of the photos uploaded together, with retries of its failures."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from restorations.accounts.teams import can_write
from restorations.jobs import outcomes
from restorations.jobs.access import batch_for_user
from restorations.jobs.states import Group
from restorations.jobs.views.tasks import batch_live, live_status


@require_GET
@login_required
def batch_detail(request, public_id):
    batch = batch_for_user(request.user, public_id)
    outcome = outcomes.of_batch(batch)
    live = batch_live(request, batch, outcome)
    return render(
        request,
        "jobs/batch_detail.html",
        {
            "batch": batch,
            "outcome": outcome,
            "live": live,
            "groups": [(group, label, outcome.counts[group]) for group, label in Group.choices],
            "rows": [(task, live_status(task)) for task in outcome.photos],
            "can_write": can_write(request, batch.team),
            "list_url": reverse("jobs:task_list") + f"?batch={batch.public_id}",
        },
    )
