"""The upload page: photos, an operation and its options become tasks in one batch.

With its script, the page sends each photo in a request of its own (`upload_photo`), all
naming the upload's token; without it, the form posts every photo at once (`task_create`).
Either way a bad photo refuses only itself, and an upload whose photos all fail leaves nothing.
"""

import uuid

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from restorations.accounts.teams import current_team_for
from restorations.jobs import services
from restorations.jobs.access import require_write, upload_batch
from restorations.jobs.forms import (
    MAX_FILES_PER_UPLOAD,
    MAX_PHOTOS_PER_BATCH,
    PhotoForm,
    UploadForm,
)
from restorations.jobs.models import Engine
from restorations.jobs.operations import SPECS
from restorations.jobs.validation import browser_limits


@require_http_methods(["GET", "POST"])
@login_required
def task_create(request):
    team = current_team_for(request)
    require_write(team, request.user)
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if not form.is_valid():
            return _page(request, team, form, status=400)
        data = form.cleaned_data
        batch = upload_batch(team, data["upload"])  # 404 for another team's upload
        if batch is not None and (
            batch.operation != data["operation"]
            or batch.photo_count + len(data["checked"]) > MAX_PHOTOS_PER_BATCH
        ):
            data["upload"] = uuid.uuid4()  # the form sent again for another upload
        return _created(request, data, _create_tasks(request, team, data))
    return _page(request, team, form)


def _page(request, team, form, status=200):
    free = Engine.for_team(team) == Engine.LOCAL
    return render(
        request,
        "jobs/task_create.html",
        {
            "form": form,
            "team": team,
            "limits": {
                **browser_limits(SPECS.values()),
                "max_photos": MAX_PHOTOS_PER_BATCH,
                "free": free,
            },
            "max_files": MAX_FILES_PER_UPLOAD,
            "free": free,
        },
        status=status,
    )


def _create_tasks(request, team, data):
    return services.create_tasks(
        team=team,
        user=request.user,
        items=((photo, photo.name, checked) for photo, checked in data["checked"]),
        operation=data["operation"],
        options=data["options"],
        batch_token=data["upload"],
    )


def _created(request, data, created):
    """To the photo's page for one photo, else to the batch's; each refused photo is named
    there with its reason."""
    count = len(created)
    messages.success(request, f"{count} photo{'s' if count != 1 else ''} uploaded.")
    for line in data["refused"]:
        messages.error(request, f"Not uploaded: {line}")
    if count == 1 and not data["refused"]:
        return redirect("jobs:task_detail", public_id=created[0].public_id)
    return redirect("jobs:batch_detail", public_id=data["upload"])


@require_POST
@login_required
def upload_photo(request):
    """One photo of an upload: 201 with its task's links, or a 4xx with `{"error": ...}` and
    nothing stored. The first good photo of an upload creates its batch."""
    team = current_team_for(request)
    form = PhotoForm(request.POST, request.FILES)
    try:
        require_write(team, request.user)
        if not form.is_valid():
            return _refused(form.first_error(), 400)
        data = form.cleaned_data
        batch = upload_batch(team, data["upload"])
        if batch is not None and batch.operation != data["operation"]:
            return _refused(
                f"This upload's photos get {batch.get_operation_display()}. Start a new upload "
                "to choose another restoration.",
                400,
            )
        if batch is not None and batch.photo_count >= MAX_PHOTOS_PER_BATCH:
            return _refused(
                f"An upload holds at most {MAX_PHOTOS_PER_BATCH} photos. Start a new upload "
                "for the rest.",
                400,
            )
        task = services.create_task(
            team=team,
            user=request.user,
            file=data["photo"],
            file_name=data["photo"].name,
            operation=data["operation"],
            options=data["options"],
            batch_token=data["upload"],
        )
    except ValidationError as error:
        return _refused(error.messages[0], 400)
    except PermissionDenied as error:
        return _refused(str(error), 403)
    except Http404:
        return _refused("This upload is not one of this team's. Reload the page.", 404)
    return JsonResponse(
        {
            "task": str(task.public_id),
            "name": task.upload.original_name,
            "task_url": reverse("jobs:task_detail", args=[task.public_id]),
            "batch_url": reverse("jobs:batch_detail", args=[data["upload"]]),
        },
        status=201,
    )


def _refused(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)
