"""Helpers for the browser tests: page width, accessibility (axe-core), signing in, screenshots."""

import os
import tempfile
from pathlib import Path

from axe_playwright_python.sync_playwright import Axe
from django.conf import settings
from django.test import Client

from tests.factories import login_in_team

ROOT = Path(__file__).resolve().parent.parent.parent
PHONE_WIDTH = 390
SERIOUS = frozenset({"serious", "critical"})

# axe-core 4.x, bundled with the axe-playwright-python package pinned in the dev extra: the
# script is injected from that file, nothing is downloaded while the tests run.
_AXE = Axe()


def no_horizontal_scroll(page) -> bool:
    """The page is no wider than the viewport, so it never scrolls sideways."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def too_wide(page) -> list[str]:
    """The elements that stick out past the viewport's right edge, for a failure's message."""
    return page.evaluate(
        """() => Array.from(document.querySelectorAll("body *"))
            .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5)
            .slice(0, 10)
            .map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
                 + (el.className && typeof el.className === "string"
                    ? "." + el.className.trim().split(/\\s+/).join(".") : "")
                 + " right=" + Math.round(el.getBoundingClientRect().right))"""
    )


def axe_violations(page, impacts=SERIOUS) -> list[dict]:
    """axe-core's violations on the page as it is now, of the given impacts."""
    results = _AXE.run(page).response
    return [v for v in results["violations"] if v["impact"] in impacts]


def describe(violations: list[dict]) -> str:
    return "\n".join(
        f"{v['impact']} {v['id']}: {v['help']} at "
        + ", ".join(" ".join(node["target"]) for node in v["nodes"][:5])
        for v in violations
    )


def sign_in(page, live_server, user, team=None) -> None:
    """Give the page's browser context a session of `user` (in `team`, when given), as the
    sign-in form would, without typing into it."""
    client = Client()
    if team is None:
        client.force_login(user)
    else:
        login_in_team(client, user, team)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )


def screenshot(page, name: str) -> Path:
    """The whole page as <name>.png: in docs/screenshots/ (the README shows some of them) under
    `make screenshots`, which sets DESK_SCREENSHOTS; else in a temporary folder, so that a test
    run leaves the checkout as it was."""
    folder = Path(os.environ.get("DESK_SCREENSHOTS") or Path(tempfile.gettempdir()) / "desk-shots")
    folder = folder if folder.is_absolute() else ROOT / folder
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
