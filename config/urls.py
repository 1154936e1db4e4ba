from django.contrib import admin
from django.urls import include, path

from restorations.jobs.views import site

urlpatterns = [
    path("", site.home, name="home"),
    path("tasks/", include("restorations.jobs.urls")),
    path("accounts/", include("restorations.accounts.urls")),
    path("admin/", admin.site.urls),
]
