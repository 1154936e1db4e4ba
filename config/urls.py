from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="jobs:task_list", permanent=False)),
    path("tasks/", include("restorations.jobs.urls")),
    path("accounts/", include("restorations.accounts.urls")),
    path("admin/", admin.site.urls),
]
