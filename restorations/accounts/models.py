import uuid

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from restorations.accounts import crypto


class User(AbstractUser):
    """The project's user from the first migration, so it can grow without a data migration."""

    def personal_team(self) -> "Team":
        return Team.objects.get(
            is_personal=True, memberships__user=self, memberships__role=Role.OWNER
        )


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    MEMBER = "member", _("Member")
    VIEWER = "viewer", _("Viewer")


# Roles that may create, cancel and retry tasks.
WRITE_ROLES = {Role.OWNER, Role.ADMIN, Role.MEMBER}
# Roles that may change the team's engine settings and members.
MANAGE_ROLES = {Role.OWNER, Role.ADMIN}


class KeyStatus(models.TextChoices):
    """Whether a team has its own PicWish key and whether it can be read (picwish_key_status)."""

    NONE = "none", _("no key")
    OK = "ok", _("key set")
    UNREADABLE = "unreadable", _("key unreadable")


# Staff see at most this many characters of a stored key, its last ones.
KEY_HINT_LENGTH = 4


def validate_picwish_key(key: str) -> None:
    """Refuse a key that cannot go into the X-API-KEY header: only visible ASCII (! to ~).

    The message tells where and what the first bad character is, never the key itself.
    """
    for position, char in enumerate(key, start=1):
        if "!" <= char <= "~":
            continue
        raise ValidationError(
            _(
                "A PicWish key must fit in an HTTP header: plain ASCII letters, digits and "
                "punctuation only, without spaces, tabs or line breaks. Character %(position)d "
                "is %(what)s. Copy the key again exactly as PicWish shows it."
            ),
            code="picwish_key_unsendable",
            params={"position": position, "what": _describe(char)},
        )


def _describe(char: str) -> str:
    if char == " ":
        return _("a space")
    if char in "\r\n":
        return _("a line break")
    if char == "\t":
        return _("a tab")
    if ord(char) < 0x20 or ord(char) == 0x7F:
        return _("a control character")
    return _("not plain ASCII (an accented letter, a typographic quote or dash, or similar)")


class TeamQuerySet(models.QuerySet):
    def for_user(self, user) -> "TeamQuerySet":
        if not user.is_authenticated:
            return self.none()
        return self.filter(memberships__user=user)


class Team(models.Model):
    """A group sharing one engine account: its PicWish key, rate limit and credits."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=100)
    slug = models.SlugField(_("slug"), max_length=120, unique=True)
    is_personal = models.BooleanField(_("personal team"), default=False)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )
    # Write-only: stored encrypted, never rendered back into a page.
    picwish_key_encrypted = models.TextField(_("PicWish API key (encrypted)"), blank=True)
    picwish_qps = models.FloatField(_("PicWish requests per second"), default=2.0)
    monthly_credit_budget = models.PositiveIntegerField(
        _("monthly credit budget"), null=True, blank=True
    )
    retention_days = models.PositiveIntegerField(_("days to keep files"), default=30)
    # Set when PicWish answered 401 for this team's key: its tasks wait until the key is fixed.
    key_paused_at = models.DateTimeField(_("key paused at"), null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = TeamQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def picwish_key(self) -> str:
        """The team's own key, "" without one. Raises crypto.KeyUnreadable when a key is stored
        but cannot be decrypted: the team then has a key that cannot be used, and must neither
        send an empty key nor fall back to the site's key or the built-in engine."""
        return crypto.decrypt(
            self.picwish_key_encrypted, what=f"The PicWish key of team {self.slug!r} (id {self.pk})"
        )

    @property
    def picwish_key_status(self) -> str:
        """KeyStatus.NONE, OK or UNREADABLE, without raising (the unreadable case is logged)."""
        if not self.has_own_picwish_key:
            return KeyStatus.NONE
        try:
            self.picwish_key  # noqa: B018 (decrypting it is the check)
        except crypto.KeyUnreadable:
            return KeyStatus.UNREADABLE
        return KeyStatus.OK

    @property
    def picwish_key_ending(self) -> str:
        """All staff may see of the key: the last four characters of a readable key that is
        long enough to keep the rest unknown, else ""."""
        if self.picwish_key_status != KeyStatus.OK:
            return ""
        key = self.picwish_key
        return key[-KEY_HINT_LENGTH:] if len(key) > 2 * KEY_HINT_LENGTH else ""

    def set_picwish_key(self, key: str) -> None:
        """Store a new key ("" removes it); surrounding whitespace is dropped. Raises
        ValidationError, keeping the stored key, when it cannot be sent in an HTTP header."""
        key = key.strip()
        validate_picwish_key(key)
        self.picwish_key_encrypted = crypto.encrypt(key)
        self.key_paused_at = None

    @property
    def has_own_picwish_key(self) -> bool:
        return bool(self.picwish_key_encrypted)

    def role_of(self, user) -> str | None:
        """The user's role in the team, None for an outsider; asked once per team instance and
        user (a page asks for each action it shows)."""
        roles = self.__dict__.setdefault("_roles", {})
        if user.pk not in roles:
            membership = self.memberships.filter(user=user).first()
            roles[user.pk] = membership.role if membership else None
        return roles[user.pk]

    @classmethod
    def unique_slug(cls, base: str) -> str:
        root = slugify(base)[:100] or "team"
        slug, n = root, 1
        while cls.objects.filter(slug=slug).exists():
            n += 1
            slug = f"{root}-{n}"
        return slug


class Membership(models.Model):
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="membership_one_per_user_team"),
        ]

    def __str__(self):
        return f"{self.user} in {self.team} ({self.get_role_display()})"

    @property
    def can_write(self) -> bool:
        return self.role in WRITE_ROLES
