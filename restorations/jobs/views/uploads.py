"""The upload page: photos, an operation and its options become tasks."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from restorations.accounts.teams import current_team_for
from restorations.jobs import services
from restorations.jobs.access import require_write
from restorations.jobs.forms import UploadForm
from restorations.jobs.models import Task
from restorations.jobs.operations import SPECS


@require_http_methods(["GET", "POST"])
@login_required
def task_create(request):
    team = current_team_for(request)
    require_write(team, request.user)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if not form.is_valid():
            return render(
                request, "jobs/task_create.html", {"form": form, "team": team}, status=400
            )
        created = _create_tasks(request, team, form.cleaned_data)
        messages.success(
            request, f"{len(created)} photo{'s' if len(created) != 1 else ''} uploaded."
        )
        if len(created) == 1:
            return redirect("jobs:task_detail", public_id=created[0].public_id)
        return redirect("jobs:task_list")
    return render(request, "jobs/task_create.html", {"form": form, "team": team, "specs": SPECS})


def _create_tasks(request, team, data) -> list[Task]:
    return services.create_tasks(
        team=team,
        user=request.user,
        items=(
            (photo, photo.name, checked)
            for photo, checked in zip(data["photos"], data["checked"], strict=True)
        ),
        operation=data["operation"],
        options=data["options"],
    )
