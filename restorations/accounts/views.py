from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from restorations.accounts.forms import ProfileForm, SignUpForm
from restorations.accounts.teams import switch_team


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("jobs:task_list")
    form = SignUpForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            user = form.save()
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("jobs:task_list")
        return render(request, "registration/signup.html", {"form": form}, status=400)
    return render(request, "registration/signup.html", {"form": form})


@require_POST
@login_required
def team_switch(request):
    """The header's team form: work in the posted team from now on (404 for any other)."""
    switch_team(request, request.POST.get("team", ""))
    return redirect("jobs:task_list")


@require_http_methods(["GET", "POST"])
@login_required
def profile(request):
    """The user's name, email (editable) and the teams they belong to, with their roles."""
    form = ProfileForm(request.POST or None, instance=request.user)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            form.save()
            messages.success(request, "Your email address was saved.")
            return redirect("profile")
        status = 400
        request.user.refresh_from_db()  # the header shows what is stored, not the bad input
    memberships = request.user.memberships.select_related("team").order_by(
        "-team__is_personal", "team__name"
    )
    return render(
        request,
        "registration/profile.html",
        {"form": form, "memberships": memberships},
        status=status,
    )
