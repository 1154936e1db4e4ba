"""`manage.py make_thumbnails`: thumbnails for originals and results stored before there were
any. New files get theirs when they are stored; the list never makes one while it is viewed."""

from django.core.management.base import BaseCommand

from restorations.jobs import services
from restorations.jobs.models import Task, Upload

CHUNK = 200


class Command(BaseCommand):
    help = "Make the missing thumbnails of stored originals and results."

    def handle(self, *args, **options):
        # Photos whose files the retention job deleted have neither file nor thumbnail.
        uploads = (
            Upload.objects.filter(thumbnail="", files_deleted_at__isnull=True)
            .select_related("team")
            .order_by("pk")
        )
        made, unreadable = _each(uploads, services.backfill_thumbnail)
        results = (
            Task.objects.exclude(result="")
            .filter(result_thumbnail="")
            .select_related("team")
            .order_by("pk")
        )
        made_results, unreadable_results = _each(results, services.backfill_result_thumbnail)
        self.stdout.write(
            f"{made} original and {made_results} result thumbnails made; "
            f"{unreadable + unreadable_results} files could not be read."
        )


def _each(rows, backfill) -> tuple[int, int]:
    made = unreadable = 0
    for row in rows.iterator(chunk_size=CHUNK):
        if backfill(row):
            made += 1
        else:
            unreadable += 1
    return made, unreadable
