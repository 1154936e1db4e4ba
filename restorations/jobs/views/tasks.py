"""The task list, its live updates and bulk actions, and one task's page and actions."""

import uuid
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch, prefetch_related_objects
from django.http import HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.templatetags.static import static
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from restorations.accounts.teams import can_write, current_team_for
from restorations.jobs import (
    bulk,
    estimates,
    listing,
    outcomes,
    retention,
    services,
    states,
    timeline,
)
from restorations.jobs.access import task_for_user, tasks_for_user, visible_batch
from restorations.jobs.models import Task
from restorations.jobs.operations import Operation

# The live endpoint answers for at most this many tasks: two pages' worth of rows.
LIVE_MAX_IDS = 100
PLACEHOLDER = "img/placeholder.svg"


@require_GET
@login_required
def task_list(request):
    team = current_team_for(request)
    filters = listing.Filters.from_query(request.GET)
    tasks = Task.objects.filter(team=team).select_related("upload", "batch")
    page = listing.page(filters.apply(tasks), request.GET)
    return render(
        request,
        "jobs/task_list.html",
        {
            "team": team,
            "page": page,
            # The outlooks (place in the queue, expected finish) come with the first live
            # refresh, sent as the page loads: the page itself stays within its queries.
            "rows": [(task, live_status(task)) for task in page.tasks],
            "filters": filters,
            "newer_url": page.newer and "?" + urlencode({**filters.query(), "newer": page.newer}),
            "older_url": page.older and "?" + urlencode({**filters.query(), "older": page.older}),
            "batch": filters.batch_shown(team),
            "groups": states.Group.choices,
            "operations": Operation.choices,
            "has_tasks": bool(page.tasks) or tasks.exists(),
            "can_write": can_write(request, team),
        },
    )


@require_GET
@login_required
def task_live(request):
    """What the list, detail and batch pages poll: one request for every task still in flight
    on the page, and with `batch=<id>` that batch's counts and failures. Ids the user may not
    see are left out of the answer, as if they did not exist (a batch among them is null)."""
    ids = [part for part in request.GET.get("ids", "").split(",") if part.strip()]
    if len(ids) > LIVE_MAX_IDS:
        return JsonResponse(
            {"error": f"Ask for at most {LIVE_MAX_IDS} tasks at once; this asked for {len(ids)}."},
            status=400,
        )
    try:
        public_ids = [uuid.UUID(part.strip()) for part in ids]
    except ValueError:
        return JsonResponse({"error": "The ids must be task ids, separated by commas."}, status=400)
    batch = visible_batch(request.user, request.GET["batch"]) if "batch" in request.GET else None
    outcome = outcomes.of_batch(batch) if batch else None
    # A batch's photos answer for their own rows; only other ids are looked up.
    photos = {task.public_id: task for task in outcome.photos} if outcome else {}
    tasks = [photos[pk] for pk in dict.fromkeys(public_ids) if pk in photos]
    others = [pk for pk in public_ids if pk not in photos]
    if others:
        tasks += tasks_for_user(request.user, others)
    tasks.sort(key=lambda task: (task.created_at, task.pk), reverse=True)  # newest first
    # The outlooks of the rows and of the batch's photos in flight, worked out together: a few
    # queries per team, whatever the number of photos.
    in_flight = outcome.photos_in_flight if outcome else []
    outlooks = estimates.outlooks({task.pk: task for task in [*tasks, *in_flight]}.values())
    answer = {"tasks": [live_status(task, outlooks.get(task.pk)) for task in tasks]}
    if "batch" in request.GET:
        answer["batch"] = batch_live(request, batch, outcome, outlooks) if batch else None
    return JsonResponse(answer)


def batch_live(
    request, batch, outcome: outcomes.Outcome, outlooks: dict[int, estimates.Outlook] | None = None
) -> dict:
    """A batch's counts by state group, its failures (the page's own fragment) and, given the
    outlooks of its photos in flight, when the last of them will likely be done: for the batch
    page and its live refreshes."""
    return {
        "id": str(batch.public_id),
        "photos": len(outcome.photos),
        "counts": outcome.counts,
        "final": not outcome.in_flight,
        "outlook": estimates.describe_batch(
            [outlooks.get(task.pk) for task in outcome.photos_in_flight]
        )
        if outlooks is not None
        else "",
        "failures_version": outcome.failures_version,
        "failures_html": render_to_string(
            "jobs/_batch_failures.html",
            {
                "batch": batch,
                "outcome": outcome,
                "can_write": can_write(request, batch.team),
            },
            request=request,
        ),
    }


def live_status(task: Task, outlook: estimates.Outlook | None = None) -> dict:
    """What the pages show live of a task; its outlook (place in the queue, expected finish)
    when given, worked out for many tasks at once by `estimates.outlooks`."""
    info = task.state_info
    return {
        "id": str(task.public_id),
        "state": task.state,
        "label": info.label,
        "category": info.category,
        "group": task.group,
        "progress": task.progress,
        "final": task.is_final,
        "reason": info.reason,
        "advice": info.advice,
        "result_url": reverse("jobs:download_result", args=[task.public_id])
        if task.result
        else None,
        "thumbnail_url": thumbnail_url(task),
        "result_thumbnail_url": result_thumbnail_url(task),
        "checked_seconds_ago": task.checked_seconds_ago,
        "ahead": outlook.ahead if outlook else None,
        "done_at": outlook.done_at.isoformat() if outlook and outlook.done_at else None,
        "outlook": estimates.describe(outlook),
    }


def thumbnail_url(task: Task) -> str:
    """The original's thumbnail, or the placeholder for rows from before thumbnails."""
    if task.upload.thumbnail:
        return reverse("jobs:thumbnail", args=[task.public_id])
    return static(PLACEHOLDER)


def result_thumbnail_url(task: Task) -> str | None:
    if task.result_thumbnail:
        return reverse("jobs:result_thumbnail", args=[task.public_id])
    return static(PLACEHOLDER) if task.result else None


@require_POST
@login_required
def task_bulk(request):
    """Retry, cancel or delete the ticked tasks: first a page that asks ("Cancel 3 photos?"),
    then, confirmed, the action on exactly those ids and a message saying what happened."""
    action = bulk.ACTIONS.get(request.POST.get("action", ""))
    back = back_to_list(request)
    if action is None:
        messages.error(request, "Choose what to do with the selected photos.")
        return redirect(back)
    tasks = tasks_for_user(request.user, posted_ids(request), write=True)
    if not tasks:
        messages.info(request, "No photos were selected.")
        return redirect(back)
    if request.POST.get("confirm") != "yes":
        return render(
            request,
            "jobs/task_bulk_confirm.html",
            {
                "action": request.POST["action"],
                "question": bulk.question(action, len(tasks)),
                "verb": action.verb,
                "count_words": bulk.photos(len(tasks)),
                "tasks": tasks,
                "back": back,
            },
        )
    messages.success(request, bulk.apply(action, tasks, request.user))
    return redirect(back)


def posted_ids(request) -> list[uuid.UUID]:
    """The ticked ids; anything that is not a task id is left out like an id of another team."""
    ids = []
    for value in request.POST.getlist("ids"):
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue
    return ids


def back_to_list(request) -> str:
    """The list page the form came from, with its filters; only a page of this site."""
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, {request.get_host()}):
        return back
    return reverse("jobs:task_list")


@require_GET
@login_required
def task_detail(request, public_id):
    task = task_for_user(request.user, public_id)
    # The attempts made from this one, read once: the header, the timeline and can_retry ask.
    prefetch_related_objects([task], Prefetch("retries", Task.objects.order_by("created_at")))
    attempt = services.attempt_number(task)
    upload = task.upload
    events = task.events.select_related("actor")
    return render(
        request,
        "jobs/task_detail.html",
        {
            "task": task,
            "info": task.state_info,
            "attempt": attempt,
            "retries": task.retries.all(),
            "timeline": timeline.entries(task, events, attempt=attempt),
            "can_write": can_write(request, task.team),
            "can_retry": services.can_retry(task),
            "compare": _comparison(task),
            "retention_days": task.team.retention_days,
            "files_expire_at": retention.files_expire_at(task),
            "files_deleted_at": upload.files_deleted_at,
        },
    )


# Formats a browser cannot draw; the comparison shows their thumbnail instead.
_NOT_DRAWN = {"TIFF"}


def _comparison(task: Task) -> dict | None:
    """The before-and-after images, both shown through the access check, or None without a
    result (or once the files are deleted)."""
    if not (task.result and task.upload.file):
        return None
    drawn = task.upload.format not in _NOT_DRAWN
    return {
        "before_url": reverse("jobs:view_original", args=[task.public_id])
        if drawn
        else thumbnail_url(task),
        "before_is_preview": not drawn,
        "after_url": reverse("jobs:view_result", args=[task.public_id]),
        "width": task.upload.width,
        "height": task.upload.height,
    }


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
    made = task.retries.order_by("-created_at").first()
    if made is not None:  # a second click, or an older attempt's page
        messages.info(
            request,
            f"This photo was already sent again as attempt {services.attempt_number(made)}.",
        )
        return HttpResponseRedirect(reverse("jobs:task_detail", args=[made.public_id]), status=303)
    new = services.retry(task, request.user) if services.can_retry(task) else None
    if new is None:
        if task.upload.files_deleted_at is not None:
            message = "The original was deleted, so this photo cannot be sent again."
        else:
            message = "Retrying cannot help this task."
        messages.error(request, message)
        return HttpResponseRedirect(reverse("jobs:task_detail", args=[task.public_id]), status=303)
    messages.success(request, f"Sent again as attempt {services.attempt_number(new)}.")
    return redirect("jobs:task_detail", public_id=new.public_id)
