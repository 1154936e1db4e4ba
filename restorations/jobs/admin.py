from django.contrib import admin

from restorations.jobs.models import Task, TaskEvent, Upload
from restorations.jobs.states import STATES


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [(code, f"{info.label} ({code})") for code, info in sorted(STATES.items())]

    def queryset(self, request, queryset):
        return queryset.filter(state=self.value()) if self.value() is not None else queryset


class TaskEventInline(admin.TabularInline):
    model = TaskEvent
    extra = 0
    can_delete = False
    readonly_fields = ["created_at", "kind", "from_state", "to_state", "message", "actor"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Upload)
class UploadAdmin(admin.ModelAdmin):
    list_display = [
        "original_name",
        "team",
        "uploaded_by",
        "format",
        "width",
        "height",
        "bytes",
        "created_at",
        "files_deleted_at",
    ]
    list_filter = ["format"]
    search_fields = ["original_name", "sha256", "public_id"]
    readonly_fields = ["public_id", "sha256", "bytes", "width", "height", "format", "created_at"]
    readonly_fields += ["thumbnail"]  # made when the original is stored
    readonly_fields += ["files_deleted_at"]  # written by the retention job


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = [
        "public_id",
        "operation",
        "engine",
        "state",
        "state_label",
        "progress",
        "team",
        "created_by",
        "created_at",
        "poll_count",
    ]
    list_filter = [StateFilter, "engine", "operation"]
    search_fields = ["public_id", "remote_task_id", "upload__original_name"]
    inlines = [TaskEventInline]
    # Only the review note is edited here; everything else is written by the pipeline, and
    # state changes only through restorations.jobs.transitions.
    editable_fields = ["review_note"]

    def has_add_permission(self, request):
        return False  # tasks come from uploads, the command line and retries

    def get_readonly_fields(self, request, obj=None):
        fields = [f.name for f in Task._meta.fields if f.name not in self.editable_fields]
        return [*fields, "state_label", "state_reason"]

    @admin.display(description="state label")
    def state_label(self, task):
        return task.state_info.label

    @admin.display(description="reason")
    def state_reason(self, task):
        return task.state_info.reason


@admin.register(TaskEvent)
class TaskEventAdmin(admin.ModelAdmin):
    list_display = ["task", "kind", "from_state", "to_state", "actor", "created_at"]
    list_filter = ["kind"]
    raw_id_fields = ["task"]
