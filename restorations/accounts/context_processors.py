from restorations.accounts.teams import current_team_for


def current_team(request):
    if not request.user.is_authenticated:
        return {}
    team = current_team_for(request)
    return {
        "current_team": team,
        "user_teams": request.user.teams.order_by("-is_personal", "name"),
    }
