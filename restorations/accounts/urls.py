from django.urls import include, path

from restorations.accounts import views

urlpatterns = [
    path("signup/", views.signup, name="signup"),
    path("profile/", views.profile, name="profile"),
    path("teams/switch/", views.team_switch, name="team_switch"),
    # Log in, log out (POST only), password change and password reset: Django's views, with
    # the templates in templates/registration/.
    path("", include("django.contrib.auth.urls")),
]
