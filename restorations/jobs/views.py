from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import transaction
from django.http import FileResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from restorations.accounts.models import WRITE_ROLES
from restorations.accounts.teams import current_team_for
from restorations.jobs import services
from restorations.jobs.access import require_write, task_for_user
from restorations.jobs.forms import UploadForm
from restorations.jobs.models import Task
from restorations.jobs.operations import SPECS

TASKS_PER_PAGE = 50


@require_GET
@login_required
def task_list(request):
    team = current_team_for(request)
    tasks = Task.objects.filter(team=team).select_related("upload").order_by("-created_at")
    page = Paginator(tasks, TASKS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "jobs/task_list.html",
        {"team": team, "page": page, "can_write": team.role_of(request.user) in WRITE_ROLES},
    )


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


@require_GET
@login_required
def task_detail(request, public_id):
    task = task_for_user(request.user, public_id)
    return render(
        request,
        "jobs/task_detail.html",
        {
            "task": task,
            "info": task.state_info,
            "events": task.events.select_related("actor"),
            "retries": task.retries.order_by("created_at"),
            "can_write": task.team.role_of(request.user) in WRITE_ROLES,
            "can_retry": services.can_retry(task),
        },
    )


@require_GET
@login_required
def task_status(request, public_id):
    """What the detail and list pages poll for live progress."""
    task = task_for_user(request.user, public_id)
    info = task.state_info
    latest_retry = task.retries.order_by("-created_at").first()
    return JsonResponse(
        {
            "id": str(task.public_id),
            "state": task.state,
            "label": info.label,
            "category": info.category,
            "reason": info.reason,
            "advice": info.advice,
            "progress": task.progress,
            "final": task.is_final,
            "result_url": reverse("jobs:download_result", args=[task.public_id])
            if task.result
            else None,
            "retried_as": reverse("jobs:task_detail", args=[latest_retry.public_id])
            if latest_retry
            else None,
        }
    )


@require_POST
@login_required
def task_cancel(request, public_id):
    task = task_for_user(request.user, public_id, write=True)
    if services.cancel(task, request.user):
        messages.success(request, "The restoration was canceled.")
    else:
        messages.info(request, "This restoration had already finished.")
    return redirect("jobs:task_detail", public_id=task.public_id)


@require_POST
@login_required
def task_retry(request, public_id):
    task = task_for_user(request.user, public_id, write=True)
    if not services.can_retry(task):
        messages.error(request, "Retrying cannot help this task.")
        return HttpResponseRedirect(reverse("jobs:task_detail", args=[task.public_id]), status=303)
    with transaction.atomic():
        new = services.retry(task, request.user)
    messages.success(request, "Sent again as a new task.")
    return redirect("jobs:task_detail", public_id=new.public_id)


@require_GET
@login_required
def download_original(request, public_id):
    task = task_for_user(request.user, public_id)
    return _serve(task.upload.file, task.upload.original_name)


@require_GET
@login_required
def download_result(request, public_id):
    task = task_for_user(request.user, public_id)
    if not task.result:
        messages.error(request, "This task has no result to download.")
        return HttpResponseRedirect(reverse("jobs:task_detail", args=[task.public_id]), status=303)
    return _serve(task.result, task.result_download_name())


def _serve(field_file, download_name):
    """Stream from local storage; on S3, redirect to a short-lived signed URL."""
    storage = field_file.storage
    if getattr(storage, "querystring_auth", False):
        return HttpResponseRedirect(
            storage.url(
                field_file.name,
                parameters={
                    "ResponseContentDisposition": content_disposition_header(True, download_name)
                },
            )
        )
    return FileResponse(field_file.open("rb"), as_attachment=True, filename=download_name)
