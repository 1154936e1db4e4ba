from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from restorations.accounts.models import (
    KeyStatus,
    Membership,
    Team,
    User,
    validate_picwish_key,
)
from restorations.jobs.services import resume_waiting_tasks

admin.site.register(User, UserAdmin)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class TeamAdminForm(forms.ModelForm):
    """The PicWish key is write-only: a new value replaces it, the stored one is never shown."""

    new_picwish_key = forms.CharField(
        label="New PicWish API key",
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text="Leave empty to keep the current key.",
    )
    clear_picwish_key = forms.BooleanField(label="Remove the PicWish key", required=False)

    class Meta:
        model = Team
        fields = [
            "name",
            "slug",
            "is_personal",
            "picwish_qps",
            "monthly_credit_budget",
            "retention_days",
            "key_paused_at",
        ]

    def clean_new_picwish_key(self):
        key = self.cleaned_data.get("new_picwish_key", "")
        validate_picwish_key(key.strip())
        return key

    def save(self, commit=True):
        team = super().save(commit=False)
        if self.cleaned_data.get("clear_picwish_key"):
            team.set_picwish_key("")
        elif self.cleaned_data.get("new_picwish_key"):
            team.set_picwish_key(self.cleaned_data["new_picwish_key"])
        if commit:
            team.save()
        return team


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    form = TeamAdminForm
    list_display = ["name", "slug", "is_personal", "picwish_key", "key_paused_at", "created_at"]
    list_filter = ["is_personal"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]
    readonly_fields = ["current_picwish_key"]
    fieldsets = [
        (None, {"fields": ["name", "slug", "is_personal"]}),
        (
            "PicWish",
            {
                "fields": [
                    "current_picwish_key",
                    "new_picwish_key",
                    "clear_picwish_key",
                    "picwish_qps",
                    "key_paused_at",
                ]
            },
        ),
        ("Limits", {"fields": ["monthly_credit_budget", "retention_days"]}),
    ]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("new_picwish_key") or form.cleaned_data.get("clear_picwish_key"):
            resume_waiting_tasks(obj)

    @admin.display(description="PicWish key")
    def picwish_key(self, team):
        """At most the key's last four characters; "key unreadable" when it cannot be read."""
        status = team.picwish_key_status
        if status == KeyStatus.OK and team.picwish_key_ending:
            return f"…{team.picwish_key_ending}"
        return KeyStatus(status).label

    @admin.display(description="Current PicWish key")
    def current_picwish_key(self, team):
        status = team.picwish_key_status
        if status == KeyStatus.UNREADABLE:
            return (
                "key unreadable: it was stored under another FIELD_ENCRYPTION_KEY (or "
                "DJANGO_SECRET_KEY). The team's PicWish tasks wait until a key is saved again."
            )
        if status == KeyStatus.OK:
            ending = team.picwish_key_ending
            return f"set, ending in …{ending}" if ending else "set"
        return "none: the team's tasks use the site's key, else the built-in engine"


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "team", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "team__name"]
    autocomplete_fields = ["user", "team"]
