import uuid
from pathlib import PurePath

from django.conf import settings
from django.db import models
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from restorations.accounts.models import Team
from restorations.jobs import states
from restorations.jobs.operations import Operation, spec_for
from restorations.jobs.states import State

# Tasks something still has to happen to: the dispatcher's and the poller's working set.
ACTIVE = states.IN_PROGRESS


def original_path(upload: "Upload", filename: str) -> str:
    """Storage path from ids only: the user's file name never reaches the file system."""
    return f"originals/{upload.team.public_id}/{upload.public_id}{PurePath(filename).suffix}"


def result_path(task: "Task", filename: str) -> str:
    return f"results/{task.team.public_id}/{task.public_id}{PurePath(filename).suffix}"


def thumbnail_path(upload: "Upload", filename: str) -> str:
    return f"thumbnails/{upload.team.public_id}/{upload.public_id}{PurePath(filename).suffix}"


def result_thumbnail_path(task: "Task", filename: str) -> str:
    suffix = PurePath(filename).suffix
    return f"thumbnails/{task.team.public_id}/{task.public_id}-result{suffix}"


class Engine(models.TextChoices):
    PICWISH = "picwish", _("PicWish")
    LOCAL = "local", _("Built-in engine")

    @classmethod
    def for_team(cls, team) -> "Engine":
        """PicWish when the team or the site has a key; otherwise the built-in engine."""
        if team.has_own_picwish_key or settings.PICWISH_API_KEY:
            return cls.PICWISH
        return cls.LOCAL


# PicWish tasks PicWish has finished processing (it stamps completion only then), with the poll
# planner's estimates of their processing times: where the planner learns from.
FINISHED_AT_PICWISH = Q(
    engine=Engine.PICWISH,
    upstream_completed_at__isnull=False,
    processing_started_at__isnull=False,
    processing_ends_at__isnull=False,
)
# PicWish tasks PicWish holds and has not finished, as far as the project knows (sent, not yet
# seen finished): the queue the poll planner replays. PicWish's in-progress codes are 0 and
# 2..99, written as two ranges: PostgreSQL estimates `state >= 0 AND state < 100 AND state <> 1`
# as if its parts were independent, expects a tenth of a long history of completed tasks to
# match, and then scans the table (and compiles the scan) instead of reading an index.
IN_FLIGHT_AT_PICWISH = Q(engine=Engine.PICWISH) & (
    Q(state=State.QUEUED) | Q(state__gt=State.COMPLETED, state__lt=State.WAITING_TO_SEND)
)

# Built-in engine runs, all teams together (one pool of workers): those queued or running, and
# those that ran to a result with their times (the estimates' measured speed).
LOCAL_IN_FLIGHT = Q(engine=Engine.LOCAL, state__in=[State.QUEUED, State.PROCESSING])
LOCAL_RAN = Q(
    engine=Engine.LOCAL, processing_started_at__isnull=False, processing_ends_at__isnull=False
)


class BatchQuerySet(models.QuerySet):
    def visible_to(self, user) -> "BatchQuerySet":
        """The batches of the user's teams, as for tasks (TaskQuerySet.visible_to)."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(team__memberships__user=user)


class Batch(models.Model):
    """Photos uploaded together. Its name is computed ("12 photos · 3 Dec 14:02"), so it stays
    true when photos are deleted. The upload page names it before its first photo arrives (its
    public id is the page's upload token), so photos sent one per request find it."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="batches")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="batches"
    )
    operation = models.CharField(_("operation"), max_length=32, choices=Operation.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = BatchQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"

    def __str__(self):
        return self.display_name

    @cached_property
    def photo_count(self) -> int:
        """Photos, not attempts: a retry keeps its original's batch but is the same photo.
        Counted once per instance (a page shows it in several places)."""
        return self.tasks.filter(retry_of__isnull=True).count()

    @property
    def display_name(self) -> str:
        count = self.photo_count
        when = timezone.localtime(self.created_at)
        return f"{count} photo{'' if count == 1 else 's'} · {when.day} {when:%b %H:%M}"


class Upload(models.Model):
    """An original photo as the user sent it."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="uploads")
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="uploads"
    )
    file = models.FileField(upload_to=original_path, max_length=255)
    original_name = models.CharField(_("file name"), max_length=255)
    sha256 = models.CharField(max_length=64, db_index=True)
    bytes = models.PositiveBigIntegerField()
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    format = models.CharField(max_length=10)  # Pillow's name: JPEG, PNG, ...
    # Made once when the original is stored (restorations.jobs.thumbnails); empty on rows from
    # before thumbnails, until `manage.py make_thumbnails` backfills them.
    thumbnail = models.FileField(upload_to=thumbnail_path, max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the retention job deleted this photo's files (the original, every attempt's result
    # and their thumbnails; restorations.jobs.retention). The file fields are empty from then on;
    # the rows and timelines stay.
    files_deleted_at = models.DateTimeField(_("files deleted at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The retention job's candidates (retention.expired): photos whose files are still
            # stored, oldest first. Partial, so photos already emptied cost nothing.
            models.Index(
                fields=["created_at"],
                condition=Q(files_deleted_at__isnull=True),
                name="upload_files_kept",
            ),
        ]
        # The task list's search by file name has a trigram index on PostgreSQL,
        # upload_name_trgm (migration 0008), written in SQL: Django puts an operator class of
        # an expression inside parentheses, where PostgreSQL refuses it.

    def __str__(self):
        return self.original_name


class TaskQuerySet(models.QuerySet):
    def visible_to(self, user) -> "TaskQuerySet":
        """The one place that says which tasks a user may see: those of the user's teams."""
        if not user.is_authenticated:
            return self.none()
        return self.filter(team__memberships__user=user)

    def active(self) -> "TaskQuerySet":
        return self.filter(ACTIVE)

    def latest_attempts(self) -> "TaskQuerySet":
        """Each photo once, at its latest attempt: the task of its upload that no later one of
        the same upload follows (a retry keeps the upload), however the attempts are linked."""
        later = Task.objects.filter(upload=OuterRef("upload")).filter(
            Q(created_at__gt=OuterRef("created_at"))
            | Q(created_at=OuterRef("created_at"), pk__gt=OuterRef("pk"))
        )
        return self.exclude(Exists(later))


class Task(models.Model):
    """One restoration of one upload by one engine. A retry is a new Task (`retry_of`)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="tasks")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="tasks")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="tasks"
    )
    batch = models.ForeignKey(
        Batch, on_delete=models.SET_NULL, null=True, blank=True, related_name="tasks"
    )
    operation = models.CharField(_("operation"), max_length=32, choices=Operation.choices)
    options = models.JSONField(_("options"), default=dict, blank=True)
    engine = models.CharField(_("engine"), max_length=10, choices=Engine.choices)
    remote_task_id = models.CharField(_("remote task id"), max_length=64, blank=True)

    # PicWish's code verbatim or one of the project's (restorations.jobs.states).
    state = models.IntegerField(_("state"), default=State.WAITING_TO_SEND)
    state_detail = models.CharField(_("state detail"), max_length=200, blank=True)
    progress = models.PositiveSmallIntegerField(_("progress"), default=0)

    upstream_created_at = models.DateTimeField(null=True, blank=True)
    upstream_processed_at = models.DateTimeField(null=True, blank=True)
    upstream_completed_at = models.DateTimeField(null=True, blank=True)
    # PicWish stamps whole seconds; the planner's finer estimates of its processing time.
    processing_started_at = models.DateTimeField(null=True, blank=True)
    processing_ends_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Expected from progress while processing; once finished, "
        "the likeliest moment it finished.",
    )
    # What each poll saw while PicWish processed the task: [Unix time, state, progress]. Once
    # the task has finished, the poll planner learns from it how reports relate to time left.
    progress_seen = models.JSONField(default=list, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    deadline_at = models.DateTimeField(null=True, blank=True)

    # When the dispatcher should next look at this task, and who holds it until when.
    next_poll_at = models.DateTimeField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    poll_count = models.PositiveIntegerField(default=0)
    attempts = models.PositiveIntegerField(_("send attempts"), default=0)
    # Server errors and lost answers in a row; bounded retries use it, 429s never count.
    fault_count = models.PositiveSmallIntegerField(_("faults in a row"), default=0)
    last_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_response = models.TextField(_("last raw answer"), blank=True)

    result = models.FileField(upload_to=result_path, max_length=255, blank=True)
    result_sha256 = models.CharField(max_length=64, blank=True)
    result_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    result_width = models.PositiveIntegerField(null=True, blank=True)
    result_height = models.PositiveIntegerField(null=True, blank=True)
    result_thumbnail = models.FileField(upload_to=result_thumbnail_path, max_length=255, blank=True)
    # What PicWish reported with state 1, for the fetch: the result's URL (base64 when the
    # return type is 2), how it is returned and its size in pixels, and when the URL expires.
    upstream_result = models.TextField(_("result at PicWish"), blank=True)
    upstream_result_type = models.PositiveSmallIntegerField(null=True, blank=True)
    upstream_result_width = models.PositiveIntegerField(null=True, blank=True)
    upstream_result_height = models.PositiveIntegerField(null=True, blank=True)
    result_url_expires_at = models.DateTimeField(null=True, blank=True)

    failure_code = models.IntegerField(null=True, blank=True)
    failure_message = models.TextField(blank=True)
    retry_of = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="retries"
    )

    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="reviewed_tasks",
    )
    review_note = models.TextField(blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = TaskQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            # The dispatcher's query: active tasks whose next_poll_at is due, oldest due first.
            # Partial, so finished tasks (the vast majority over time) cost nothing.
            models.Index(fields=["next_poll_at"], condition=ACTIVE, name="task_active_due"),
            # The team task list: newest first within a team, with the id breaking ties, so a
            # page after a cursor starts where the index range starts (restorations.jobs.listing).
            models.Index(fields=["team", "-created_at", "-id"], name="task_team_recent"),
            # The same for a team's tasks in flight (the list's waiting and in-progress groups),
            # a handful among a long history: read from its start, not filtered from the above.
            models.Index(
                fields=["team", "-created_at", "-id"], condition=ACTIVE, name="task_team_in_flight"
            ),
            # The poll planner's queries (restorations.picwish.planning), run several times per
            # send and poll: a team's most recently finished tasks of one operation (their
            # processing times), and of all operations (the measured concurrency; the queue
            # replay's tasks finished since the oldest one PicWish holds was sent). Partial,
            # with exactly planning.finished()'s condition, so they read the newest rows of
            # the team however long its history, and in-flight tasks never enter them.
            models.Index(
                fields=["team", "operation", "-processing_ends_at"],
                condition=FINISHED_AT_PICWISH,
                name="task_finished_op_recent",
            ),
            models.Index(
                fields=["team", "-processing_ends_at"],
                condition=FINISHED_AT_PICWISH,
                name="task_finished_recent",
            ),
            # The queue replay's tasks PicWish holds, oldest sent first, and their count (the
            # dispatcher's send deadlines): with exactly planning.in_flight()'s condition.
            models.Index(
                fields=["team", "submitted_at", "id"],
                condition=IN_FLIGHT_AT_PICWISH,
                name="task_in_flight",
            ),
            # The estimates of built-in engine photos (restorations.jobs.estimates): the queue
            # oldest first, and the most recent runs.
            models.Index(fields=["created_at"], condition=LOCAL_IN_FLIGHT, name="task_local_queue"),
            models.Index(
                fields=["-processing_ends_at"], condition=LOCAL_RAN, name="task_local_recent"
            ),
        ]

    def __str__(self):
        return f"{self.get_operation_display()} of {self.upload} ({self.state_info.label})"

    @property
    def state_info(self) -> states.StateInfo:
        return states.describe(self.state)

    @property
    def spec(self):
        return spec_for(self.operation)

    @property
    def is_final(self) -> bool:
        return states.is_final(self.state)

    @property
    def group(self) -> states.Group:
        return states.group_of(self.state)

    @property
    def checked_seconds_ago(self) -> int:
        """Seconds since anything last touched the task: every poll, progress report and state
        change stamps `updated_at`."""
        return max(0, int((timezone.now() - self.updated_at).total_seconds()))

    def result_download_name(self) -> str:
        """The name a result is downloaded as: the original's name without its extension, then
        "-restored" and the result's extension ("Grandad 1961.jpg" gives "Grandad
        1961-restored.png" for a PNG result)."""
        name = self.upload.original_name
        stem = name.rsplit(".", 1)[0] if "." in name else name
        stem = stem.strip(" .") or "photo"
        return f"{stem}-restored{PurePath(self.result.name).suffix}"


class EventKind(models.TextChoices):
    CREATED = "created", _("Created")
    SUBMITTED = "submitted", _("Sent")
    STATE_CHANGED = "state_changed", _("State changed")
    RATE_LIMITED = "rate_limited", _("Rate limited")
    ERROR = "error", _("Error")
    RESULT_SAVED = "result_saved", _("Result saved")
    CANCELED = "canceled", _("Canceled")
    RETRIED = "retried", _("Retried")
    REVIEWED = "reviewed", _("Reviewed")
    FILES_DELETED = "files_deleted", _("Files deleted")


class TaskEvent(models.Model):
    """Append-only timeline of a task."""

    task = models.ForeignKey(Task, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=20, choices=EventKind.choices)
    from_state = models.IntegerField(null=True, blank=True)
    to_state = models.IntegerField(null=True, blank=True)
    message = models.TextField(blank=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self):
        return f"{self.get_kind_display()} at {self.created_at:%Y-%m-%d %H:%M:%S}"

    @property
    def change(self) -> str:
        """ "Processing → Saving the result", or "" when the state did not change."""
        if self.to_state is None or self.from_state == self.to_state:
            return ""
        to_label = states.describe(self.to_state).label
        if self.from_state is None:
            return to_label
        return f"{states.describe(self.from_state).label} → {to_label}"
