"""Results as one ZIP, streamed to the browser while it is built, in constant memory.

Each result is read from storage in chunks through Django's storage API (local files or S3)
and written into the ZIP as it is (results are already compressed images, so entries are
stored, not deflated). The ZIP goes out through a write-only sink, so the standard library's
zipfile writes every entry with a data descriptor and never seeks back: what has been written
can be sent at once. The sha256 of each result is computed from the bytes sent.

`manifest.csv` comes last: one row per task, with its file name in the ZIP (empty for a task
without a result), its original name, operation, state, reason, how many tries the photo took
and its result's sha256. Its rows wait in a spooled temporary file (memory up to a limit, then
disk), so a batch of any size costs the same memory.
"""

import csv
import hashlib
import io
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from tempfile import SpooledTemporaryFile

from django.db.models import Count, IntegerField, OuterRef, QuerySet, Subquery
from django.utils import timezone

from restorations.jobs.models import Batch, Task

CHUNK_BYTES = 64 * 1024
MANIFEST_NAME = "manifest.csv"
MANIFEST_FIELDS = (
    "file_name",
    "original_name",
    "operation",
    "state",
    "reason",
    "attempts",
    "result_sha256",
)
# Manifest rows beyond this many bytes wait on disk.
MANIFEST_MEMORY_BYTES = 256 * 1024
# Tasks read from the database at a time.
TASKS_PER_QUERY = 200
UNREADABLE = "The result file could not be read from storage."
DELETED = "The result was deleted after the team's retention period."
# Characters Windows refuses in file names; replaced in entry names (the manifest keeps the
# original name as it was).
_NOT_IN_FILE_NAMES = str.maketrans({ch: "_" for ch in '<>:"/\\|?*'})


def batch_tasks(batch: Batch) -> QuerySet:
    """The batch's photos, each once: its latest attempt, oldest first."""
    return _for_archive(Task.objects.filter(batch=batch).latest_attempts())


def selected_tasks(tasks: Iterable[Task]) -> QuerySet:
    """Exactly these tasks (already access-checked), oldest first."""
    return _for_archive(Task.objects.filter(pk__in=[task.pk for task in tasks]))


def _for_archive(tasks: QuerySet) -> QuerySet:
    """Every attempt of a photo is a task of its upload: a retry keeps the upload and links to
    the attempt it repeats through `retry_of`. Counting the upload's tasks also counts attempts
    whose link was cut when an attempt between them was deleted."""
    attempts = (
        Task.objects.filter(upload=OuterRef("upload"))
        .order_by()
        .values("upload")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return (
        tasks.select_related("upload")
        .annotate(attempt_count=Subquery(attempts, output_field=IntegerField()))
        .order_by("created_at", "id")
    )


def has_results(tasks: QuerySet) -> bool:
    return tasks.exclude(result="").exists()


class EntryNames:
    """ZIP entry names, unique without regard to case (Windows and macOS extract
    "Photo.jpg" and "photo.jpg" to one file): the second "photo-restored.jpg" becomes
    "photo-restored (2).jpg"."""

    def __init__(self, reserved: Iterable[str] = ()):
        self._taken = {name.casefold() for name in reserved}

    def take(self, wanted: str) -> str:
        wanted = wanted.translate(_NOT_IN_FILE_NAMES)
        path = PurePosixPath(wanted)
        name, number = wanted, 1
        while name.casefold() in self._taken:
            number += 1
            name = f"{path.stem} ({number}){path.suffix}"
        self._taken.add(name.casefold())
        return name


class _Sink:
    """Where zipfile writes: collects the bytes until the generator sends them. It cannot
    seek or tell, so zipfile streams (a data descriptor after each entry)."""

    def __init__(self):
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def drain(self) -> bytes:
        data, self._parts = b"".join(self._parts), []
        return data


def stream(tasks: QuerySet) -> Iterator[bytes]:
    """The ZIP of `tasks`' results and its manifest, as chunks of bytes. Nothing is read,
    queried or opened before the first chunk is asked for."""
    sink = _Sink()
    names = EntryNames(reserved=[MANIFEST_NAME])
    with SpooledTemporaryFile(max_size=MANIFEST_MEMORY_BYTES) as manifest:
        _write_row(manifest, MANIFEST_FIELDS, bom=True)
        archive = zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_STORED)
        for task in tasks.iterator(chunk_size=TASKS_PER_QUERY):
            file_name, digest, reason = "", "", _reason(task)
            if task.result:
                try:
                    source = task.result.open("rb")
                except OSError:  # the file is gone from storage
                    reason = UNREADABLE
                else:
                    file_name = names.take(task.result_download_name())
                    digest = yield from _add(archive, sink, file_name, source, task)
            _write_row(manifest, _manifest_row(task, file_name, reason, digest))
        manifest.seek(0)
        yield from _add(archive, sink, MANIFEST_NAME, manifest, None)
        archive.close()  # the central directory
    yield sink.drain()


def _reason(task: Task) -> str:
    if task.state_info.is_success and not task.result and task.upload.files_deleted_at:
        return DELETED  # restorations.jobs.retention emptied it
    return task.state_info.reason


def _add(archive, sink, name: str, source, task: Task | None) -> Iterator[bytes]:
    """Copy `source` (closed afterwards) into the entry `name`, yielding what the ZIP has so
    far after each chunk; returns the sha256 of what was copied."""
    info = zipfile.ZipInfo(name, date_time=_date_time(task))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16  # a plain file, readable by everyone who extracts it
    digest = hashlib.sha256()
    with source, archive.open(info, mode="w") as entry:
        while chunk := source.read(CHUNK_BYTES):
            entry.write(chunk)
            digest.update(chunk)
            yield sink.drain()
    # The data descriptor (sizes and CRC) follows with the next entry's header.
    return digest.hexdigest()


def _date_time(task: Task | None) -> tuple:
    """The result's time (when its task finished) in the site's time zone; the manifest's is
    the time of the download."""
    when = (task.finished_at or task.updated_at) if task is not None else timezone.now()
    return timezone.localtime(when).timetuple()[:6]


def _manifest_row(task: Task, file_name: str, reason: str, digest: str) -> tuple:
    return (
        file_name,
        task.upload.original_name,
        task.get_operation_display(),
        task.state_info.label,
        reason,
        task.attempt_count,
        digest,
    )


def _write_row(target, row, *, bom: bool = False) -> None:
    """One CSV row, UTF-8; the byte-order mark first, so spreadsheets read non-ASCII names."""
    text = io.StringIO()
    csv.writer(text).writerow([_inert(value) for value in row])
    target.write(text.getvalue().encode("utf-8-sig" if bom else "utf-8"))


# A cell a spreadsheet would read as a formula (a user's file name such as "=HYPERLINK(...)").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _inert(value):
    """The value, with a quote before text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
