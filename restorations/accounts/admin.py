from django import forms
from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from restorations.accounts.models import Membership, Team, User

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
    list_display = ["name", "slug", "is_personal", "has_key", "key_paused_at", "created_at"]
    list_filter = ["is_personal"]
    search_fields = ["name", "slug"]
    inlines = [MembershipInline]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("new_picwish_key") or form.cleaned_data.get("clear_picwish_key"):
            from restorations.jobs.services import resume_waiting_tasks

            resume_waiting_tasks(obj)

    @admin.display(boolean=True, description="PicWish key")
    def has_key(self, team):
        return team.has_own_picwish_key


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "team", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "team__name"]
    autocomplete_fields = ["user", "team"]
