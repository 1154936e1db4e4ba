"""A user's own account: the profile page, changing and resetting the password, logging out."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from restorations.accounts.models import User

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery"  # tests/factories.py
NEW_PASSWORD = "a brand-new pass phrase"


# --- profile ------------------------------------------------------------------------------


def test_the_profile_shows_name_email_and_each_team_with_its_role(client, studio, alice, victor):
    client.force_login(victor)
    page = client.get(reverse("profile")).content.decode()
    assert "victor" in page and 'value="victor@example.com"' in page
    assert re.search(r"Studio</td><td>Viewer", page)
    assert re.search(r"victor&#x27;s photos.*your personal team.*</td><td>Owner", page)
    assert reverse("password_change") in page


def test_the_profile_shows_no_team_of_others(client, studio, charlie):
    client.force_login(charlie)
    assert "Studio" not in client.get(reverse("profile")).content.decode()


def test_the_email_can_be_changed(client, alice):
    client.force_login(alice)
    response = client.post(reverse("profile"), {"email": "alice@studio.example"})
    assert response.status_code == 302 and response["Location"] == reverse("profile")
    alice.refresh_from_db()
    assert alice.email == "alice@studio.example"
    assert "Your email address was saved." in client.get(reverse("profile")).content.decode()


def test_a_bad_email_is_400_with_the_reason_and_changes_nothing(client, alice):
    client.force_login(alice)
    response = client.post(reverse("profile"), {"email": "not an address"})
    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()
    alice.refresh_from_db()
    assert alice.email == "alice@example.com"


def test_the_username_cannot_be_changed_here(client, alice):
    client.force_login(alice)
    client.post(reverse("profile"), {"email": "alice@example.com", "username": "mallory"})
    alice.refresh_from_db()
    assert alice.username == "alice"


def test_the_profile_needs_a_sign_in(client):
    response = client.get(reverse("profile"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- password change ----------------------------------------------------------------------


def test_a_password_change_keeps_the_user_signed_in_and_replaces_the_old_one(client, alice):
    client.force_login(alice)
    page = client.get(reverse("password_change"))
    assert page.status_code == 200
    assert "registration/password_change_form.html" in [t.name for t in page.templates]
    response = client.post(
        reverse("password_change"),
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("password_change_done")
    assert "Password changed" in client.get(response["Location"]).content.decode()
    assert client.get(reverse("profile")).status_code == 200  # still signed in
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD) and not alice.check_password(PASSWORD)


def test_a_wrong_old_password_changes_nothing(client, alice):
    client.force_login(alice)
    response = client.post(
        reverse("password_change"),
        {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert response.status_code == 200  # Django's view answers an invalid form with 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_the_password_change_needs_a_sign_in(client):
    response = client.get(reverse("password_change"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- password reset -----------------------------------------------------------------------


def test_a_reset_mails_a_link_that_sets_a_new_password_once(client, alice):
    response = client.post(reverse("password_reset"), {"email": "alice@example.com"})
    assert response.status_code == 302 and response["Location"] == reverse("password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["alice@example.com"]
    assert message.subject == "Choose a new password for Restoration Desk"
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", message.body)[1]

    form = client.get(link, follow=True)  # Django moves the token into the session
    assert "Choose a new password" in form.content.decode()
    done = client.post(
        form.redirect_chain[-1][0], {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )
    assert done["Location"] == reverse("password_reset_complete")
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert client.login(username="alice", password=NEW_PASSWORD)

    client.logout()
    again = client.get(link, follow=True).content.decode()
    assert "This link no longer works" in again


def test_a_reset_for_an_unknown_address_looks_the_same_and_mails_nothing(client, alice):
    response = client.post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []


def test_the_reset_page_is_in_the_sites_style(client):
    response = client.get(reverse("password_reset"))
    assert "registration/password_reset_form.html" in [t.name for t in response.templates]
    assert "base.html" in [t.name for t in response.templates]


def test_sign_in_offers_the_reset(client):
    assert reverse("password_reset") in client.get(reverse("login")).content.decode()


# --- log out ------------------------------------------------------------------------------


def test_log_out_is_a_post_and_lands_on_the_home_page(client, alice):
    client.force_login(alice)
    assert client.get(reverse("logout")).status_code == 405
    assert client.get(reverse("profile")).status_code == 200
    response = client.post(reverse("logout"))
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.get(reverse("profile")).status_code == 302


def test_sign_up_asks_for_an_email_for_password_resets(client):
    page = client.get(reverse("signup")).content.decode()
    assert "send you a link when you forget your password" in page
    assert User.objects.count() == 0
