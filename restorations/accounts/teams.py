"""Which team a request works in. The choice is kept in the session; the default is personal."""

from django.http import Http404

from restorations.accounts.models import Team

SESSION_KEY = "current_team"


def current_team_for(request) -> Team:
    """The team the request works in, read once per request (the page and the header both ask)."""
    if getattr(request, "_current_team", None) is None:
        teams = Team.objects.for_user(request.user)
        chosen = request.session.get(SESSION_KEY)
        team = teams.filter(public_id=chosen).first() if chosen else None
        request._current_team = team or request.user.personal_team()
    return request._current_team


def switch_team(request, public_id) -> Team:
    team = Team.objects.for_user(request.user).filter(public_id=public_id).first()
    if team is None:
        raise Http404("No such team.")
    request.session[SESSION_KEY] = str(team.public_id)
    request._current_team = team
    return team
