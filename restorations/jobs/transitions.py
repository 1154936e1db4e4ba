"""The one writer of `Task.state`.

Every state change of every task goes through `move` (or `claim`, a move that also loads the
task for the claimant, or `create`, a task's first state). Each checks the change against
`RULES`, the table of allowed transitions and who may cause them, makes it with a conditional
update (so two processes never both make it), and writes exactly one TaskEvent for it, naming
the person when a person acted. A disallowed transition raises `IllegalTransition`.

Events that change no state (a 429, an error that is retried) are written by `note`. A test
walks the table; another fails if any other module writes `Task.state`.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from django.db import models, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from restorations.jobs import queue, states
from restorations.jobs.models import Engine, EventKind, Task, TaskEvent
from restorations.jobs.states import State

log = logging.getLogger(__name__)

# Transient failures are retried automatically at most this many times per original task.
MAX_AUTOMATIC_RETRIES = 2
# A local task waits in its queue; if nothing has started it by then, it is queued again.
LOCAL_QUEUE_WATCHDOG = timedelta(minutes=15)


class Cause(models.TextChoices):
    SYSTEM = "system", _("the dispatcher, a worker or an engine")
    UPSTREAM = "upstream", _("what the engine reported")
    PERSON = "person", _("a person")


class IllegalTransition(Exception):
    """A state change the table does not allow: a bug in the caller, never a user error."""


def _at_engine(code: int) -> bool:
    """In progress at an engine: PicWish's progress codes (0, 2-6, and codes it may add below
    the project's 100-102), or the built-in engine's queued (0) and processing (4)."""
    return 0 <= code < State.WAITING_TO_SEND and code != State.COMPLETED


def _failed(code: int) -> bool:
    return states.is_failure(code) and code != State.CANCELED


def _one_of(*codes: int) -> Callable[[int], bool]:
    allowed = frozenset(int(code) for code in codes)
    return lambda code: code in allowed


_SYSTEM = frozenset({Cause.SYSTEM})
_ENGINE = frozenset({Cause.SYSTEM, Cause.UPSTREAM})
_PERSON = frozenset({Cause.PERSON})


@dataclass(frozen=True)
class Rule:
    name: str
    source: Callable[[int], bool]
    target: Callable[[int], bool]
    causes: frozenset[Cause]


RULES: tuple[Rule, ...] = (
    Rule("claimed for sending", _one_of(State.WAITING_TO_SEND), _one_of(State.SENDING), _SYSTEM),
    Rule("handed back to wait", _one_of(State.SENDING), _one_of(State.WAITING_TO_SEND), _SYSTEM),
    Rule("accepted by the engine", _one_of(State.SENDING), _at_engine, _SYSTEM),
    # A create whose answer came after its send was taken back, or a local task from before
    # local tasks were born queued.
    Rule("adopted by the engine", _one_of(State.WAITING_TO_SEND), _at_engine, _SYSTEM),
    Rule("not sent", _one_of(State.SENDING), _failed, _SYSTEM),
    Rule("progress at the engine", _at_engine, _at_engine, _ENGINE),
    Rule("finished, saving", _at_engine, _one_of(State.SAVING_RESULT), _ENGINE),
    Rule("failed at the engine", _at_engine, _failed, _ENGINE),
    Rule("result saved", _one_of(State.SAVING_RESULT), _one_of(State.COMPLETED), _SYSTEM),
    Rule("result not saved", _one_of(State.SAVING_RESULT), _failed, _SYSTEM),
    Rule("canceled", lambda code: not states.is_final(code), _one_of(State.CANCELED), _PERSON),
)
# The states a task is created in: waiting for the dispatcher (PicWish) or queued (built-in).
FIRST_STATES = {Engine.PICWISH: State.WAITING_TO_SEND, Engine.LOCAL: State.QUEUED}


def rule_for(from_state: int, to_state: int, cause: Cause) -> Rule | None:
    for rule in RULES:
        if cause in rule.causes and rule.source(from_state) and rule.target(to_state):
            return rule
    return None


def check(from_state: int, to_state: int, cause: Cause) -> Rule:
    rule = rule_for(from_state, to_state, cause)
    if rule is None:
        raise IllegalTransition(
            f"{states.describe(from_state).label} ({from_state}) → "
            f"{states.describe(to_state).label} ({to_state}) is not allowed for {cause.label}"
        )
    return rule


def create(*, engine: str, actor=None, message: str = "", **fields) -> Task:
    """A new task in its engine's first state, with its "created" event. A local task's message
    to the engine's queue leaves when the transaction commits."""
    state = FIRST_STATES[engine]
    task = Task.objects.create(engine=engine, state=state, **first_schedule(engine), **fields)
    TaskEvent.objects.create(
        task=task, kind=EventKind.CREATED, to_state=state, actor=actor, message=message
    )
    if engine == Engine.LOCAL:
        queue.send_on_commit(queue.RUN_LOCAL, task.pk)
    return task


def move(
    task: Task,
    to_state: int,
    *,
    expect: int | None = None,
    cause: Cause | None = None,
    actor=None,
    kind: str = EventKind.STATE_CHANGED,
    message: str = "",
    where: dict | None = None,
    **fields,
) -> bool:
    """Change the state from `expect` (default: what `task` holds) to `to_state`, only if the
    row still is in `expect` and matches `where` (e.g. the lease a worker holds).

    Returns False, changing nothing, when another process changed the task first. Final states
    also stamp finished_at and, for failures, the failure code and message. `cause` defaults to
    PERSON when an `actor` is given, else SYSTEM.
    """
    expect = task.state if expect is None else expect
    cause = cause or (Cause.PERSON if actor is not None else Cause.SYSTEM)
    check(expect, to_state, cause)
    now = timezone.now()
    fields["updated_at"] = now
    if states.is_final(to_state):
        fields.setdefault("finished_at", now)
        fields.setdefault("next_poll_at", None)
        fields.setdefault("lease_expires_at", None)
        if states.is_failure(to_state):
            fields.setdefault("failure_code", to_state)
            fields.setdefault("failure_message", message or states.describe(to_state).reason)
    with transaction.atomic():
        rows = Task.objects.filter(pk=task.pk, state=expect, **(where or {}))
        if not rows.update(state=to_state, **fields):
            return False
        TaskEvent.objects.create(
            task=task, kind=kind, from_state=expect, to_state=to_state, message=message, actor=actor
        )
        if states.is_failure(to_state) and to_state != State.CANCELED:
            log.info("task %s failed with %s: %s", task.public_id, to_state, message)
            _retry_automatically_if_transient(task, to_state)
    task.state = to_state
    for name, value in fields.items():
        setattr(task, name, value)
    computed = [name for name, value in fields.items() if hasattr(value, "resolve_expression")]
    if computed:  # e.g. attempts=F("attempts") + 1
        task.refresh_from_db(fields=computed)
    return True


def claim(
    task_pk: int, from_state: int, to_state: int, *, where: dict | None = None, **fields
) -> Task | None:
    """Move the task `task_pk` from `from_state` to `to_state` for the calling process alone
    (`fields` as for `move`): the task, or None if it is not there or another process had it
    first."""
    task = Task.objects.select_related("team", "upload").filter(pk=task_pk, **(where or {}))
    task = task.first()
    if task is None or task.state != from_state:
        return None
    if not move(task, to_state, expect=from_state, where=where, **fields):
        return None
    return task


def note(task: Task, kind: str, message: str, *, actor=None) -> None:
    """An event that changes no state: a 429, an error that will be retried, a late answer."""
    TaskEvent.objects.create(task=task, kind=kind, message=message, actor=actor)


def retry(task: Task, user, *, automatic: bool = False) -> Task:
    """A new task for the same upload in the same batch, linked by retry_of, so every attempt
    stays visible."""
    new = create(
        engine=Engine.for_team(task.team),
        actor=user,
        message=f"Retry of {task.public_id}",
        upload=task.upload,
        team=task.team,
        created_by=user if user is not None else task.created_by,
        operation=task.operation,
        options=task.options,
        retry_of=task,
        batch_id=task.batch_id,
    )
    how = "automatically" if automatic else f"by {user}"
    note(task, EventKind.RETRIED, f"Retried {how} as {new.public_id}", actor=user)
    return new


def first_schedule(engine: str) -> dict:
    """When the dispatcher first looks at a new task. A PicWish task is due at once: the
    dispatcher books its create a slot with the key's limiter, in the key's order of need. A
    local task is queued on the built-in engine at once (its message leaves on commit) and is
    due only if that message is lost."""
    now = timezone.now()
    if engine == Engine.LOCAL:
        return {"submitted_at": now, "next_poll_at": now + LOCAL_QUEUE_WATCHDOG}
    return {"next_poll_at": now}


def retry_depth(task: Task) -> int:
    depth, current = 0, task
    while current.retry_of_id is not None:
        depth += 1
        current = Task.objects.only("retry_of_id").get(pk=current.retry_of_id)
    return depth


def _retry_automatically_if_transient(task: Task, code: int) -> None:
    if states.describe(code).retried_automatically and retry_depth(task) < MAX_AUTOMATIC_RETRIES:
        retry(task, None, automatic=True)
