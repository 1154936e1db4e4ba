"""The site's own pages: the home page, which says what the product does."""

from django.shortcuts import render
from django.views.decorators.http import require_GET

from restorations.jobs.operations import SPECS


@require_GET
def home(request):
    """For visitors and signed-in users alike; only its calls to action differ."""
    return render(request, "home.html", {"specs": SPECS.values()})
