"""Results as one ZIP: a whole batch's, or those of the photos ticked in the task list."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect, StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import patch_cache_control
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_POST

from restorations.jobs import archive
from restorations.jobs.access import batch_for_user, tasks_for_user
from restorations.jobs.views.tasks import back_to_list, posted_ids


@require_GET
@login_required
def batch_download(request, public_id):
    batch = batch_for_user(request.user, public_id)
    tasks = archive.batch_tasks(batch)
    if not archive.has_results(tasks):
        messages.error(request, "No photo of this batch has a result to download yet.")
        list_url = reverse("jobs:task_list") + f"?batch={batch.public_id}"
        return HttpResponseRedirect(list_url, status=303)
    when = timezone.localtime(batch.created_at)
    return _zip_response(tasks, f"restored-{batch.team.slug}-{when:%Y-%m-%d-%H%M}.zip")


@require_POST
@login_required
def selection_download(request):
    """Exactly the ticked tasks; ids the user may not see are left out, as in the list's other
    actions. A download changes nothing, so it needs no confirmation and viewers may use it."""
    back = back_to_list(request)
    tasks = tasks_for_user(request.user, posted_ids(request))
    if not tasks:
        messages.info(request, "No photos were selected.")
        return HttpResponseRedirect(back, status=303)
    selected = archive.selected_tasks(tasks)
    if not archive.has_results(selected):
        count = len(tasks)
        messages.error(
            request,
            "The selected photo has no result to download yet."
            if count == 1
            else f"None of the {count} selected photos has a result to download yet.",
        )
        return HttpResponseRedirect(back, status=303)
    when = timezone.localtime()
    return _zip_response(selected, f"restored-photos-{when:%Y-%m-%d-%H%M}.zip")


def _zip_response(tasks, file_name: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(archive.stream(tasks), content_type="application/zip")
    response["Content-Disposition"] = content_disposition_header(True, file_name)
    # A proxy in front (nginx) would otherwise hold the ZIP back until it has all of it.
    response["X-Accel-Buffering"] = "no"
    patch_cache_control(response, private=True, no_store=True)
    return response
