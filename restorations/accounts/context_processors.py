from restorations.accounts.teams import current_team_for, teams_of


def current_team(request):
    if not request.user.is_authenticated:
        return {}
    team = current_team_for(request)
    return {
        "current_team": team,
        "user_teams": teams_of(request),
    }
