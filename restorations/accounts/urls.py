from django.urls import include, path

from restorations.accounts import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("teams/<uuid:public_id>/switch/", views.team_switch, name="team_switch"),
    path("", include("django.contrib.auth.urls")),
]
