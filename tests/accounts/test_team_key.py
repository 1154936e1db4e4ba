"""A team's own PicWish key: an unreadable key fails loudly, a key that cannot be sent is
refused when it is saved, and the admin never renders a key back."""

import logging

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ValidationError
from django.urls import reverse

from restorations.accounts import crypto
from restorations.accounts.models import Team
from restorations.jobs.models import Engine

KEY = "pw-live-7c1e9a2b4d"


def _change_page(admin_client, team):
    return admin_client.get(reverse("admin:accounts_team_change", args=[team.pk]))


def _list_page(admin_client):
    return admin_client.get(reverse("admin:accounts_team_changelist"))


def _post_team(admin_client, team, **fields):
    data = {
        "name": team.name,
        "slug": team.slug,
        "picwish_qps": 2,
        "retention_days": 30,
        "memberships-TOTAL_FORMS": 0,
        "memberships-INITIAL_FORMS": 0,
        **fields,
    }
    return admin_client.post(reverse("admin:accounts_team_change", args=[team.pk]), data)


@pytest.fixture
def unreadable_team(settings, studio):
    """A team whose key was stored under one FIELD_ENCRYPTION_KEY, read under another."""
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    studio.set_picwish_key(KEY)
    studio.save()
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    return Team.objects.get(pk=studio.pk)


# --- A key that cannot be decrypted ---------------------------------------------------------


def test_an_unreadable_key_raises_instead_of_reading_as_empty(unreadable_team, caplog):
    with caplog.at_level(logging.ERROR), pytest.raises(crypto.KeyUnreadable):
        unreadable_team.picwish_key  # noqa: B018 (reading it is the test)

    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert unreadable_team.slug in errors[0].getMessage()
    logged = caplog.text
    assert KEY not in logged and unreadable_team.picwish_key_encrypted not in logged


def test_an_unreadable_key_is_logged_once_however_often_it_is_read(unreadable_team, caplog):
    with caplog.at_level(logging.ERROR):
        for _ in range(3):
            with pytest.raises(crypto.KeyUnreadable):
                unreadable_team.picwish_key  # noqa: B018
            assert unreadable_team.picwish_key_status == "unreadable"

    assert len([r for r in caplog.records if r.levelno == logging.ERROR]) == 1


def test_the_exception_says_nothing_of_the_key(unreadable_team):
    with pytest.raises(crypto.KeyUnreadable) as raised:
        unreadable_team.picwish_key  # noqa: B018
    text = f"{raised.value!s} {raised.value!r}"
    assert KEY not in text and unreadable_team.picwish_key_encrypted not in text
    assert raised.value.__cause__ is None and raised.value.__suppress_context__


def test_the_status_tells_without_raising(unreadable_team, studio, settings):
    assert unreadable_team.picwish_key_status == "unreadable"
    fresh = Team.objects.create(name="Fresh", slug="fresh")
    assert fresh.picwish_key_status == "none"
    fresh.set_picwish_key(KEY)
    assert fresh.picwish_key_status == "ok"


def test_an_unreadable_key_still_counts_as_the_teams_own(unreadable_team, settings):
    """Never a silent fall-back: not to the site's key, not to the built-in engine."""
    settings.PICWISH_API_KEY = ""
    assert unreadable_team.has_own_picwish_key
    assert Engine.for_team(unreadable_team) == Engine.PICWISH


def test_the_admin_shows_staff_an_unreadable_key(unreadable_team, admin_client):
    for page in (_change_page(admin_client, unreadable_team), _list_page(admin_client)):
        assert page.status_code == 200
        content = page.content.decode()
        assert "key unreadable" in content
        assert KEY not in content and unreadable_team.picwish_key_encrypted not in content


def test_saving_a_new_key_makes_an_unreadable_one_readable(unreadable_team, admin_client):
    response = _post_team(admin_client, unreadable_team, new_picwish_key="pw-new-key-0042")
    assert response.status_code == 302
    team = Team.objects.get(pk=unreadable_team.pk)
    assert team.picwish_key_status == "ok" and team.picwish_key == "pw-new-key-0042"


def test_the_admin_shows_at_most_the_last_four_characters(studio, admin_client):
    studio.set_picwish_key(KEY)
    studio.save()
    for page in (_change_page(admin_client, studio), _list_page(admin_client)):
        content = page.content.decode()
        assert KEY[-4:] in content
        assert KEY[-5:] not in content and studio.picwish_key_encrypted not in content


def test_a_short_key_shows_none_of_its_characters(studio, admin_client):
    studio.set_picwish_key("ab12cd34")
    studio.save()
    for page in (_change_page(admin_client, studio), _list_page(admin_client)):
        content = page.content.decode()
        assert "cd34" not in content and "d34" not in content


# --- A key that cannot go into an HTTP header -----------------------------------------------

UNSENDABLE = {
    "non-ASCII": "pw-clé-1234",
    "a line break": "pw-key\n1234",
    "a carriage return": "pw-key\r1234",
    "a control character": "pw-key\x071234",
    "a tab": "pw-key\t1234",
    "a space": "pw-key 1234",
    "a DEL": "pw-key\x7f1234",
}


@pytest.mark.parametrize("key", UNSENDABLE.values(), ids=UNSENDABLE.keys())
def test_a_key_that_cannot_be_sent_is_refused(studio, key):
    with pytest.raises(ValidationError) as raised:
        studio.set_picwish_key(key)
    message = " ".join(raised.value.messages)
    assert "PicWish key" in message and "HTTP header" in message
    assert key not in message
    assert studio.picwish_key_encrypted == "" and studio.picwish_key_status == "none"


def test_a_refused_key_leaves_the_stored_one_in_place(studio):
    studio.set_picwish_key(KEY)
    with pytest.raises(ValidationError):
        studio.set_picwish_key("pw key")
    assert studio.picwish_key == KEY


def test_surrounding_whitespace_is_trimmed_not_refused(studio):
    studio.set_picwish_key(f"  {KEY}\n")
    assert studio.picwish_key == KEY


@pytest.mark.parametrize("key", UNSENDABLE.values(), ids=UNSENDABLE.keys())
def test_the_admin_form_shows_why_a_key_was_refused(studio, admin_client, key):
    response = _post_team(admin_client, studio, new_picwish_key=key)
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "new_picwish_key" in errors
    assert "HTTP header" in response.content.decode()
    assert not Team.objects.get(pk=studio.pk).has_own_picwish_key


def test_a_refused_key_is_not_rendered_back_into_the_form(studio, admin_client):
    response = _post_team(admin_client, studio, new_picwish_key="pw-secret key-9876")
    assert response.status_code == 200
    assert "pw-secret key-9876" not in response.content.decode()
    assert "pw-secret" not in response.content.decode()
