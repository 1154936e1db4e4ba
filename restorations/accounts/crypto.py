"""Encryption at rest for secrets stored in the database (team PicWish keys)."""

import base64
import hashlib
import logging

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

log = logging.getLogger(__name__)

# Fingerprints of the stored values this process has already reported as unreadable, so a
# dispatcher that reads a team's key every tick logs it once, not four times a second.
_REPORTED: set[str] = set()
_REPORTED_MAX = 1024


class KeyUnreadable(Exception):
    """A stored secret exists but cannot be decrypted with the current encryption key.

    Raised by `decrypt` (and so by `Team.picwish_key`) when the value was encrypted under another
    FIELD_ENCRYPTION_KEY (or, without one, another DJANGO_SECRET_KEY), or was damaged. It is
    logged at ERROR once per process where it is detected, here; callers should not log it
    again. Its message names what could not be read, never the secret or its ciphertext.

    What a caller must do: treat the secret as present but unusable. For a team's PicWish key
    that means its tasks wait and are never sent, neither with an empty key, nor with the site's
    key, nor to the built-in engine; staff see "key unreadable" in the admin and fix it by
    saving the key again (or by restoring the old encryption key).
    """


def _fernet() -> Fernet:
    key = settings.FIELD_ENCRYPTION_KEY
    if not key:
        digest = hashlib.sha256(b"restorations.field-encryption:" + settings.SECRET_KEY.encode())
        key = base64.urlsafe_b64encode(digest.digest()).decode()
    return Fernet(key)


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode() if plaintext else ""


def decrypt(ciphertext: str, *, what: str = "A stored secret") -> str:
    """The plaintext, "" for an empty value; raises KeyUnreadable when it cannot be decrypted.

    `what` names the value in the log line and the exception ("The PicWish key of team x").
    """
    if not ciphertext:
        return ""
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        error = KeyUnreadable(
            f"{what} cannot be decrypted with the current FIELD_ENCRYPTION_KEY: it was stored "
            "under another encryption key (or DJANGO_SECRET_KEY) or is damaged. Save it again."
        )
        _report_once(ciphertext, error)
        raise error from None


def _report_once(ciphertext: str, error: KeyUnreadable) -> None:
    fingerprint = hashlib.sha256(ciphertext.encode()).hexdigest()
    if fingerprint in _REPORTED:
        return
    if len(_REPORTED) >= _REPORTED_MAX:
        _REPORTED.clear()
    _REPORTED.add(fingerprint)
    log.error("%s", error)
