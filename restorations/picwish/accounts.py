"""Which PicWish account a team's tasks use, and pausing a key that PicWish refused.

A team uses its own key, else the site's (PICWISH_API_KEY), else none (its tasks then go to the
built-in engine when created, and PicWish tasks already made wait for a key). A key PicWish
answered 401 to is paused: its tasks wait, and one of them tries the key again every
PICWISH_PAUSE_PROBE_SECONDS. A stored key that cannot be decrypted (`crypto.KeyUnreadable`)
makes its tasks wait too; it is never replaced by an empty key or the site's.
"""

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from restorations.accounts.crypto import KeyUnreadable
from restorations.accounts.models import Team
from restorations.picwish import client, ratelimit

log = logging.getLogger(__name__)

# A worker this much later than its booked slot books a new one: later, the request could land
# in one PicWish window with the next two (slots are only 5 % wider than 1/QPS).
LATE_FOR_SLOT = 0.02
# How long a late worker waits for a new slot before giving its task back: about one tick of
# the dispatcher, which books the key's slots a tick ahead in deadline order, so a busy key has
# few gaps for a waiter and the task is served sooner by being booked again. Waiting longer
# held a worker process idle for seconds while its other messages went late in turn.
ACQUIRE_TIMEOUT = 0.3

__all__ = ["Account", "KeyUnreadable", "account_for", "is_paused", "key_works", "pause_key"]


@dataclass(frozen=True)
class Account:
    """The PicWish account a team's tasks use: its own key, or the site's."""

    api_key: str
    qps: float

    @property
    def key_id(self) -> str:
        return ratelimit.key_id_for(self.api_key)

    def open_client(self) -> client.PicWishClient:
        return client.PicWishClient(settings.PICWISH_BASE_URL, self.api_key)

    def take_slot(self, slot_at: float | None) -> bool:
        """The right to send one request now: the slot the dispatcher booked (`slot_at`, Unix
        time). Without one (a message from elsewhere) the task goes back to the dispatcher.

        A request sent later than its booked slot could crowd the next one into PicWish's
        window, so a worker that comes too late books a new slot instead. Callers take the slot
        with the client built and the file open, so the request leaves right after it.
        """
        if slot_at is None:
            return False
        wait = slot_at - time.time()
        if wait > 0:
            time.sleep(wait)
        late = time.time() - slot_at  # also after the sleep: a busy machine may oversleep
        if late > LATE_FOR_SLOT:
            limiter = ratelimit.limiter_for_settings()
            return limiter.acquire(self.key_id, self.qps, timeout=ACQUIRE_TIMEOUT)
        return True


def account_for(team: Team) -> Account | None:
    """The team's account, None without a key; raises KeyUnreadable for a key that is stored
    but cannot be decrypted."""
    if team.has_own_picwish_key:
        return Account(team.picwish_key, team.picwish_qps)
    if settings.PICWISH_API_KEY:
        return Account(settings.PICWISH_API_KEY, settings.PICWISH_QPS)
    return None


def pause_probe() -> timedelta:
    """While a key is paused (401) or unreadable, each waiting task tries it again this often."""
    return timedelta(seconds=settings.PICWISH_PAUSE_PROBE_SECONDS)


def is_paused(team: Team) -> bool:
    return bool(team.key_paused_at and team.key_paused_at > timezone.now() - pause_probe())


def pause_key(team: Team, error: client.PicWishError) -> None:
    paused = Team.objects.filter(pk=team.pk, key_paused_at__isnull=True).update(
        key_paused_at=timezone.now()
    )
    if paused:
        log.warning(
            "PicWish refused the key of team %s (401: %s); its tasks wait", team.slug, error.message
        )


def key_works(team: Team) -> None:
    if team.key_paused_at:
        Team.objects.filter(pk=team.pk).update(key_paused_at=None)
        log.info("PicWish accepts the key of team %s again", team.slug)
