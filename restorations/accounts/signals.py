from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from restorations.accounts.models import Membership, Role, Team


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def give_new_user_a_personal_team(sender, instance, created, raw=False, **kwargs):
    """Every user owns a personal team, however the user was created (sign-up, admin, CLI)."""
    if not created or raw:
        return
    team = Team.objects.create(
        name=f"{instance.get_username()}'s photos",
        slug=Team.unique_slug(instance.get_username()),
        is_personal=True,
    )
    Membership.objects.create(team=team, user=instance, role=Role.OWNER)
