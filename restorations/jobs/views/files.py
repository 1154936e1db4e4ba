"""Files of a task: its original, its result and their thumbnails, each behind the access check.

Originals and results are downloaded (as attachments, under the user's file name) or shown in
the task's page (inline, for the before-and-after comparison). Once the retention job has deleted
a photo's files, downloads go back to the task's page with a message and shown files are 410.
"""

import mimetypes

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponseGone, HttpResponseRedirect
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
# An original or result shown in a page (not downloaded) is kept by the browser this long.
INLINE_MAX_AGE = 3600


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
    if not task.upload.file:
        return _gone(request, task)
    return _serve(task.upload.file, task.upload.original_name)


@require_GET
@login_required
def download_result(request, public_id):
    task = task_for_user(request.user, public_id)
    if not task.result:
        if task.upload.files_deleted_at is not None:
            return _gone(request, task)
        messages.error(request, "This task has no result to download.")
        return HttpResponseRedirect(reverse("jobs:task_detail", args=[task.public_id]), status=303)
    return _serve(task.result, task.result_download_name())


@require_GET
@login_required
def view_original(request, public_id):
    """The original shown in the page (the before-and-after comparison), not downloaded."""
    task = task_for_user(request.user, public_id)
    if not task.upload.file:
        return HttpResponseGone("The original was deleted after the team's retention period.")
    return _serve(task.upload.file, task.upload.original_name, inline=True)


@require_GET
@login_required
def view_result(request, public_id):
    """The result shown in the page, not downloaded."""
    task = task_for_user(request.user, public_id)
    if not task.result:
        if task.upload.files_deleted_at is not None:
            return HttpResponseGone("The result was deleted after the team's retention period.")
        raise Http404("This task has no result.")
    return _serve(task.result, task.result_download_name(), inline=True)


def _gone(request, task):
    messages.error(
        request, "The files of this photo were deleted after the team's retention period."
    )
    return HttpResponseRedirect(reverse("jobs:task_detail", args=[task.public_id]), status=303)


def _serve(field_file, download_name: str, *, inline: bool = False):
    """Stream from local storage; on S3, redirect to a short-lived signed URL. `inline` files
    are shown by the browser (an image in a page) instead of saved, still under the user's
    name; their type comes from the stored name, which the checked format chose."""
    storage = field_file.storage
    disposition = content_disposition_header(not inline, download_name)
    if getattr(storage, "querystring_auth", False):
        response = HttpResponseRedirect(
            storage.url(field_file.name, parameters={"ResponseContentDisposition": disposition})
        )
    else:
        content_type = mimetypes.guess_type(field_file.name)[0] or "application/octet-stream"
        response = FileResponse(field_file.open("rb"), content_type=content_type)
        response["Content-Disposition"] = disposition
    if inline:
        # Stored files never change, but may be deleted (retention): a browser keeps a shown
        # image for an hour at most. A signed URL expires within minutes, so never its redirect.
        if isinstance(response, HttpResponseRedirect):
            patch_cache_control(response, private=True, no_store=True)
        else:
            patch_cache_control(response, private=True, max_age=INLINE_MAX_AGE)
    return response
