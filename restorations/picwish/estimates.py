"""When a team's PicWish photos will likely be done, from what the poll planner already knows.

- A photo PicWish is processing ends when the planner expects it to (`processing_ends_at`, set
  at each poll from its report and the account's finished tasks), else after its operation's
  usual processing time.
- A photo PicWish holds but has not started starts when the replay of the team's queue frees a
  slot for it (`planner.expected_starts`), then takes its operation's usual time.
- A photo not yet sent joins the end of that queue, one rate-limiter slot after the one before
  it (sends share the key with polls, so this is the soonest it can go).

Each then adds the team's measured time from PicWish's end to the result saved here (noticing
the end and downloading the result): the median over its recently finished tasks.
"""

from statistics import median

from restorations.accounts.models import Team
from restorations.jobs.models import Engine, Task
from restorations.jobs.states import State
from restorations.picwish import accounts, planner, planning, ratelimit

# The time from PicWish's end to the result saved, before any task has finished.
DEFAULT_AFTER_END = 2.0
SENDING_STATES = (State.WAITING_TO_SEND, State.SENDING)


def for_team(team: Team, now: float) -> dict[int, tuple[int | None, float | None]]:
    """For each of the team's photos in flight at PicWish, by task pk: how many photos are
    ahead of it before PicWish starts it (None once started), and when it will likely be done
    (Unix time; None while the team has no key that can send it)."""
    typical = _typical(team)
    queue = planning.queue_of(team, usual_of=lambda op: typical(op).usual)
    waiting = list(
        Task.objects.filter(team=team, engine=Engine.PICWISH, state__in=SENDING_STATES)
        .order_by("next_poll_at", "pk")
        .values_list("pk", "operation")[: planning.QUEUE_REPLAY_LIMIT]
    )
    account = _account(team)
    if account is not None:
        every = ratelimit.interval_for(account.qps)
        queue += [
            (
                pk,
                planner.Ahead(
                    submitted=now + (n + 1) * every, started=None, usual=typical(op).usual
                ),
            )
            for n, (pk, op) in enumerate(waiting)
        ]
    finishes = planning.recent(team, None, "finished_at")
    slots = planning.concurrency_from([(start, end) for start, end, _ in finishes])
    starts = planner.expected_starts([ahead for _, ahead in queue], now=now, slots=slots)
    gaps = [done.timestamp() - end for _, end, done in finishes if done and done.timestamp() >= end]
    after_end = median(gaps) if gaps else DEFAULT_AFTER_END
    outlooks: dict[int, tuple[int | None, float | None]] = {}
    not_started = 0
    for (pk, ahead), start in zip(queue, starts, strict=True):
        if ahead.finished:
            continue
        if ahead.started is None:
            position, not_started = not_started, not_started + 1
            end = start + ahead.usual
        else:
            position = None
            end = ahead.ends if ahead.ends is not None else ahead.started + ahead.usual
        outlooks[pk] = (position, max(end, now) + after_end)
    if account is None:  # nothing is sent without a key: the waiting photos wait for one
        outlooks.update({pk: (n, None) for n, (pk, _) in enumerate(waiting, not_started)})
    return outlooks


def _typical(team: Team):
    """The recent processing times of each operation on the team's account, read once each."""
    known: dict[str, planner.Durations] = {}

    def durations(operation: str) -> planner.Durations:
        if operation not in known:
            known[operation] = planning.durations_of(team, operation)
        return known[operation]

    return durations


def _account(team: Team) -> accounts.Account | None:
    """The account the waiting photos will be sent with; None while none can send them."""
    try:
        account = accounts.account_for(team)
    except accounts.KeyUnreadable:
        return None
    return None if account is None or accounts.is_paused(team) else account
