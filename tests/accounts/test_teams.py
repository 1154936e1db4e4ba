import pytest
from django.core.management import call_command
from django.db import IntegrityError
from django.urls import reverse

from restorations.accounts.models import Membership, Role, Team, User
from tests.factories import UserFactory


def _personal_teams(user):
    return Team.objects.filter(
        is_personal=True, memberships__user=user, memberships__role=Role.OWNER
    )


@pytest.mark.django_db
def test_sign_up_creates_user_with_personal_team_and_logs_in(client):
    response = client.post(
        reverse("signup"),
        {
            "username": "dora",
            "email": "dora@example.com",
            "password1": "a-long pass phrase",
            "password2": "a-long pass phrase",
        },
    )
    assert response.status_code == 302
    user = User.objects.get(username="dora")
    assert _personal_teams(user).count() == 1
    assert client.get(reverse("jobs:task_list")).status_code == 200


@pytest.mark.django_db
def test_sign_up_with_mismatched_passwords_is_400_and_creates_nothing(client):
    response = client.post(
        reverse("signup"),
        {"username": "dora", "password1": "a-long pass phrase", "password2": "other phrase"},
    )
    assert response.status_code == 400
    assert not User.objects.filter(username="dora").exists()
    assert Team.objects.count() == 0


@pytest.mark.django_db
def test_createsuperuser_gets_a_personal_team(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a-long pass phrase")
    call_command("createsuperuser", "--noinput", username="root", email="root@example.com")
    assert _personal_teams(User.objects.get(username="root")).count() == 1


@pytest.mark.django_db
def test_user_added_in_admin_gets_a_personal_team(admin_client):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {
            "username": "erin",
            "password1": "a-long pass phrase",
            "password2": "a-long pass phrase",
            "usable_password": "true",
        },
    )
    assert response.status_code == 302, response.content
    assert _personal_teams(User.objects.get(username="erin")).count() == 1


@pytest.mark.django_db
def test_personal_team_slugs_stay_unique():
    Team.objects.create(name="Taken", slug="frank")
    user = UserFactory(username="frank")
    assert user.personal_team().slug == "frank-2"


@pytest.mark.django_db(transaction=True)
def test_one_membership_per_user_and_team(studio, alice):
    with pytest.raises(IntegrityError, match="membership_one_per_user_team|UNIQUE"):
        Membership.objects.create(team=studio, user=alice, role=Role.MEMBER)


@pytest.mark.django_db
def test_team_key_is_encrypted_at_rest_and_readable_back(studio):
    studio.set_picwish_key("pw-secret-123")
    studio.save()
    stored = Team.objects.values_list("picwish_key_encrypted", flat=True).get(pk=studio.pk)
    assert "pw-secret-123" not in stored
    assert Team.objects.get(pk=studio.pk).picwish_key == "pw-secret-123"


def test_team_admin_never_renders_the_stored_key(admin_client, studio):
    studio.set_picwish_key("pw-secret-123")
    studio.save()
    page = admin_client.get(reverse("admin:accounts_team_change", args=[studio.pk]))
    assert page.status_code == 200
    assert b"pw-secret-123" not in page.content
    assert studio.picwish_key_encrypted.encode() not in page.content
