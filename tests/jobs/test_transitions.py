"""The table of allowed state changes, walked: every allowed change is made with exactly one
TaskEvent; everything else raises and changes nothing."""

import itertools

import pytest
from django.db.models import F

from restorations.jobs import transitions
from restorations.jobs.models import Engine, Task
from restorations.jobs.states import STATES, State, is_final
from restorations.jobs.transitions import Cause, IllegalTransition
from tests.factories import scale_tasks

pytestmark = pytest.mark.django_db

# Every documented code, and codes nobody documented (PicWish may add some).
CODES = sorted({*STATES, 7, 42, -4, -6, -12})
CAUSES = list(Cause)


@pytest.fixture
def task(studio, alice):
    [task] = scale_tasks(studio, alice, 1)
    return task


def _put(task, code):
    """Set the state as a test fixture would (not a transition)."""
    Task.objects.filter(pk=task.pk).update(state=code, finished_at=None, lease_expires_at=None)
    task.refresh_from_db()
    task.events.all().delete()
    task.retries.all().delete()


def test_every_allowed_change_is_made_with_one_event_naming_who(task, alice):
    made = 0
    for rule in transitions.RULES:
        for source, target in itertools.product(CODES, CODES):
            if not (rule.source(source) and rule.target(target)):
                continue
            for cause in rule.causes:
                _put(task, source)
                actor = alice if cause == Cause.PERSON else None
                assert transitions.move(task, target, cause=cause, actor=actor), rule.name
                task.refresh_from_db()
                assert task.state == target
                [event] = task.events.exclude(to_state=None)  # besides a note of a retry
                assert (event.from_state, event.to_state, event.actor) == (source, target, actor)
                assert (task.finished_at is not None) == is_final(target)
                made += 1
    assert made > 300  # the walk reached the whole table


@pytest.mark.parametrize(
    ("source", "target"),
    [
        (State.WAITING_TO_SEND, State.COMPLETED),  # success without an engine
        (State.QUEUED, State.COMPLETED),  # success without a stored result
        (State.PROCESSING, State.SENDING),
        (State.SAVING_RESULT, State.PROCESSING),
        (State.SENDING, State.SAVING_RESULT),
        (State.COMPLETED, State.CANCELED),  # final states are dead ends
        (State.CANCELED, State.WAITING_TO_SEND),
        (State.TIMED_OUT, State.QUEUED),
        (-4, State.QUEUED),
    ],
)
@pytest.mark.parametrize("cause", CAUSES)
def test_a_disallowed_change_raises_and_changes_nothing(task, alice, source, target, cause):
    _put(task, source)
    with pytest.raises(IllegalTransition):
        transitions.move(task, target, cause=cause, actor=alice)
    task.refresh_from_db()
    assert task.state == source and not task.events.exists()


def test_final_states_are_dead_ends():
    for source, target, cause in itertools.product(CODES, CODES, CAUSES):
        if is_final(source):
            assert transitions.rule_for(source, target, cause) is None, (source, target, cause)


def test_only_a_person_cancels_and_engines_never_claim_success_directly():
    for source in CODES:
        if is_final(source):
            continue
        assert transitions.rule_for(source, State.CANCELED, Cause.PERSON) is not None
        for cause in (Cause.SYSTEM, Cause.UPSTREAM):
            assert transitions.rule_for(source, State.CANCELED, cause) is None
        if source != State.SAVING_RESULT:
            for cause in CAUSES:
                assert transitions.rule_for(source, State.COMPLETED, cause) is None


def test_a_change_someone_else_made_first_is_not_made_again(task):
    _put(task, State.WAITING_TO_SEND)
    stale = Task.objects.get(pk=task.pk)
    assert transitions.move(task, State.SENDING)
    assert not transitions.move(stale, State.SENDING)  # still believes it is waiting
    assert task.events.count() == 1


def test_a_move_checks_the_extra_condition_it_is_given(task):
    _put(task, State.WAITING_TO_SEND)
    assert not transitions.move(task, State.SENDING, where={"attempts": 99})
    task.refresh_from_db()
    assert task.state == State.WAITING_TO_SEND and not task.events.exists()


def test_claim_returns_the_task_to_one_claimant_with_computed_fields_loaded(task):
    _put(task, State.WAITING_TO_SEND)
    first = transitions.claim(
        task.pk, State.WAITING_TO_SEND, State.SENDING, attempts=F("attempts") + 1
    )
    second = transitions.claim(task.pk, State.WAITING_TO_SEND, State.SENDING)
    assert first is not None and second is None
    assert first.attempts == 1 and first.state == State.SENDING


def test_a_new_task_starts_in_its_engines_first_state(studio, alice, task):
    assert transitions.FIRST_STATES == {
        Engine.PICWISH: State.WAITING_TO_SEND,
        Engine.LOCAL: State.QUEUED,
    }
    assert task.engine == Engine.LOCAL and task.state == State.QUEUED
    [event] = task.events.all()
    assert (event.kind, event.from_state, event.to_state, event.actor) == (
        "created",
        None,
        State.QUEUED,
        alice,
    )


def test_a_note_changes_no_state(task):
    transitions.note(task, "rate_limited", "429")
    [_created, note] = task.events.all()
    assert (note.from_state, note.to_state, note.change) == (None, None, "")
