"""Which team a request works in. The choice is kept in the session; the default is personal."""

from django.http import Http404

from restorations.accounts.models import WRITE_ROLES, Membership, Role, Team

SESSION_KEY = "current_team"


def teams_of(request) -> list[Team]:
    """The user's teams, personal first, then by name: one query per request (the header lists
    them, the page works in one). Each knows the user's role in it (`Team.role_of`)."""
    if getattr(request, "_teams", None) is None:
        user = request.user
        memberships = (
            Membership.objects.filter(user=user)
            .select_related("team")
            .order_by("-team__is_personal", "team__name")
        )
        teams = []
        for membership in memberships:
            membership.team.__dict__.setdefault("_roles", {})[user.pk] = membership.role
            teams.append(membership.team)
        request._teams = teams
    return request._teams


def current_team_for(request) -> Team:
    """The team the request works in: the one chosen in the session, else the personal team."""
    if getattr(request, "_current_team", None) is None:
        user, teams = request.user, teams_of(request)
        chosen = request.session.get(SESSION_KEY)
        team = next((t for t in teams if str(t.public_id) == chosen), None)
        if team is None:
            team = next((t for t in teams if t.is_personal and t.role_of(user) == Role.OWNER), None)
        request._current_team = team or user.personal_team()
    return request._current_team


def switch_team(request, public_id) -> Team:
    team = next((t for t in teams_of(request) if str(t.public_id) == str(public_id)), None)
    if team is None:
        raise Http404("No such team.")
    request.session[SESSION_KEY] = str(team.public_id)
    request._current_team = team
    return team


def can_write(request, team: Team) -> bool:
    """Whether the user may change the team's tasks (not a viewer), from the request's teams:
    the pages ask it of the team they show, at no query of its own."""
    roles = {t.pk: t.role_of(request.user) for t in teams_of(request)}
    return roles.get(team.pk) in WRITE_ROLES
