"""Files of a task: its original, its result and their thumbnails, each behind the access check."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpResponseRedirect
from django.templatetags.static import static
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET

from restorations.jobs import thumbnails
from restorations.jobs.access import task_for_user
from restorations.jobs.views.tasks import PLACEHOLDER

# Thumbnails never change once made (a task's result is stored once), so browsers keep them.
THUMBNAIL_MAX_AGE = 30 * 24 * 3600


@require_GET
@login_required
def thumbnail(request, public_id):
    task = task_for_user(request.user, public_id)
    return _serve_thumbnail(task.upload.thumbnail)


@require_GET
@login_required
def result_thumbnail(request, public_id):
    task = task_for_user(request.user, public_id)
    return _serve_thumbnail(task.result_thumbnail)


def _serve_thumbnail(field_file):
    """Through this process even on S3: a thumbnail is a few kilobytes, and a signed URL that
    expires in minutes could not be cached for a month. A missing one is the placeholder, never
    made here: previews are made when files are stored (or by `make_thumbnails`)."""
    if not field_file:
        response = HttpResponseRedirect(static(PLACEHOLDER))
        patch_cache_control(response, private=True, no_cache=True)
        return response
    response = FileResponse(field_file.open("rb"), content_type=thumbnails.CONTENT_TYPE)
    patch_cache_control(response, private=True, max_age=THUMBNAIL_MAX_AGE, immutable=True)
    return response


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
