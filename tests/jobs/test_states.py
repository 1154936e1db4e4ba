"""The table of task state codes (restorations/jobs/states.py).

The expected values are written out here on purpose: they come from PicWish's published table of
task status codes and from the project's own codes, and must not be derived from the module under
test. No database is needed.
"""

import re

import pytest

from restorations.jobs import states

# PicWish's task status codes (`data.state`), as published:
# code: (category, kind, retry_can_help).
# kind follows the sign rule: 1 success, below 0 failure, anything else in progress.
# Where PicWish's table only says "failure" (-1, -3, -11), the category is the module's choice,
# pinned here so that a change is deliberate.
PICWISH_CODES = {
    -17: ("input", "failure", False),  # invalid prompt
    -16: ("content", "failure", False),  # third-party review found prohibited content
    -15: ("transient", "failure", True),  # insufficient resources
    -14: ("input", "failure", False),  # image content does not meet the requirements
    -13: ("transient", "failure", True),  # canceled after an internal exception
    -11: ("provider", "failure", True),  # empty result
    -10: ("content", "failure", False),  # internal review found prohibited content
    -9: ("transient", "failure", True),  # internal loop failure
    -8: ("transient", "failure", True),  # timed out (180 s)
    -7: ("input", "failure", False),  # invalid or corrupt image file
    -5: ("input", "failure", False),  # image_url file over 30 MB
    -3: ("provider", "failure", True),  # PicWish could not download the image_url
    -2: ("transient", "failure", True),  # restored, but saving the result failed
    -1: ("provider", "failure", True),  # restoration failed
    0: ("in_progress", "in_progress", False),  # queued
    1: ("success", "success", False),  # completed
    2: ("in_progress", "in_progress", False),  # preparing
    3: ("in_progress", "in_progress", False),  # waiting
    4: ("in_progress", "in_progress", False),  # processing
    5: ("in_progress", "in_progress", False),  # publishing the result
    6: ("in_progress", "in_progress", False),  # processing (internal loop)
}

# The project's own codes, in ranges PicWish does not use: (category, kind, retry_can_help).
OWN_CODES = {
    100: ("in_progress", "in_progress", False),  # waiting to be sent
    101: ("in_progress", "in_progress", False),  # sending
    102: ("in_progress", "in_progress", False),  # saving the result
    -101: ("input", "failure", False),  # rejected before sending
    -102: ("provider", "failure", False),  # refused by PicWish
    -103: ("transient", "failure", True),  # result expired before it was saved
    -104: ("canceled", "failure", True),  # canceled
    -105: ("transient", "failure", True),  # no answer before the deadline
    -106: ("provider", "failure", True),  # service error
    -107: ("provider", "failure", True),  # task lost by PicWish
    -108: ("provider", "failure", True),  # could not be sent
    -109: ("provider", "failure", False),  # result too large
}

ALL_CODES = {**PICWISH_CODES, **OWN_CODES}

# Words (lower case) the plain-language reason must contain, so the meaning cannot drift.
REASON_KEYWORDS = {
    -17: ("instructions", "not accepted"),
    -16: ("content review", "allow"),
    -15: ("busy",),
    -14: ("suit", "operation"),
    -13: ("stopped", "error"),
    -11: ("empty",),
    -10: ("content review", "allow"),
    -9: ("internal", "fault"),
    -8: ("longer", "3 minutes"),
    -7: ("damaged", "read"),
    -5: ("larger", "30 mb"),
    -3: ("could not fetch", "photo"),
    -2: ("restored", "could not save"),
    -1: ("could not restore",),
    0: ("queue",),
    1: ("restored",),
    2: ("prepared",),
    3: ("waiting",),
    4: ("being restored",),
    5: ("prepared for download",),
    6: ("being restored",),
    100: ("waiting to be sent",),
    101: ("being sent",),
    102: ("being saved",),
    -101: ("limits", "not sent"),
    -102: ("refused",),
    -103: ("expired", "before"),
    -104: ("canceled",),
    -105: ("did not finish", "in time"),
    -106: ("kept failing",),
    -107: ("no longer knows",),
    -108: ("could not be sent",),
    -109: ("larger than",),
}

# Words that mean nothing to the people reading the pages.
JARGON = (
    "oss",
    "loop",
    "exception",
    "http",
    "api",
    "qps",
    "url",
    "upstream",
    "endpoint",
    "prompt",
    "base64",
    "server",
    "backend",
    "payload",
    "traceback",
    "task_id",
    "status code",
    "null",
)
JARGON_RE = re.compile(r"\b(" + "|".join(re.escape(word) for word in JARGON) + r")\b", re.I)

UNDOCUMENTED_NEGATIVE = (-4, -6, -12, -999)
UNDOCUMENTED_POSITIVE = (7, 42)

FAILURES = {code for code, (_, kind, _) in ALL_CODES.items() if kind == "failure"}


def _kind_by_sign(code):
    if code == 1:
        return "success"
    if code < 0:
        return "failure"
    return "in_progress"


def _kind_of(info):
    flags = (info.is_success, info.is_failure, info.is_in_progress)
    assert sum(flags) == 1, f"code {info.code} must be exactly one of success/failure/progress"
    return ("success", "failure", "in_progress")[flags.index(True)]


# --- 1. PicWish's codes ---------------------------------------------------------------------


def test_the_table_holds_exactly_the_documented_and_own_codes():
    assert set(states.STATES) == set(ALL_CODES)


@pytest.mark.parametrize(
    ("code", "category", "kind", "retry"),
    [(code, *row) for code, row in PICWISH_CODES.items()],
)
def test_picwish_code_is_in_the_table(code, category, kind, retry):
    info = states.STATES[code]
    assert info.code == code
    assert info.category == category
    assert info.retry_can_help is retry
    assert _kind_of(info) == kind
    # The sign rule: 1 success, below 0 failure, anything else in progress.
    assert _kind_by_sign(code) == kind
    assert states.describe(code) == info


# --- 2. Meaning of each code -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "keywords"),
    [pytest.param(code, keywords, id=str(code)) for code, keywords in REASON_KEYWORDS.items()],
)
def test_reason_says_what_happened(code, keywords):
    reason = states.describe(code).reason.lower()
    for keyword in keywords:
        assert keyword in reason, f"reason for {code} should mention {keyword!r}: {reason!r}"


def test_every_code_has_pinned_keywords():
    assert set(REASON_KEYWORDS) == set(ALL_CODES)


def _user_facing_entries():
    known = [states.STATES[code] for code in sorted(ALL_CODES)]
    unknown = [states.describe(code) for code in UNDOCUMENTED_NEGATIVE + UNDOCUMENTED_POSITIVE]
    return known + unknown


@pytest.mark.parametrize("info", _user_facing_entries(), ids=lambda info: str(info.code))
def test_no_jargon_in_what_users_read(info):
    for field in ("label", "reason", "advice"):
        text = str(getattr(info, field))
        found = JARGON_RE.findall(text)
        assert not found, f"{field} of {info.code} uses {found}: {text!r}"


@pytest.mark.parametrize("info", _user_facing_entries(), ids=lambda info: str(info.code))
@pytest.mark.parametrize("engine", ["PicWish", "the built-in engine"])
def test_every_code_says_in_a_timeline_what_reaching_it_means(info, engine):
    words = info.said_of(engine)
    assert words and "{" not in words and words[0].isupper(), words
    assert not JARGON_RE.findall(words), words


def test_the_timeline_words_name_the_engine():
    processing = states.describe(4)
    assert processing.said_of("PicWish") == "PicWish is processing it"
    assert processing.said_of("the built-in engine") == "The built-in engine is processing it"
    assert states.describe(0).said_of("the built-in engine") == "In the built-in engine's queue"
    assert states.describe(42).said_of("PicWish") == "In progress at PicWish (code 42)"


def test_jargon_check_catches_jargon():
    assert JARGON_RE.search("Restoration completed, but uploading the result to OSS failed.")
    assert JARGON_RE.search("Internal loop processing failed.")
    assert JARGON_RE.search("Canceled due to an exception.")
    assert not JARGON_RE.search("The restoration service had an internal fault.")


# --- 3. The project's own codes --------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "category", "kind", "retry"),
    [(code, *row) for code, row in OWN_CODES.items()],
)
def test_own_code_is_in_the_table(code, category, kind, retry):
    info = states.STATES[code]
    assert info.code == code
    assert info.category == category
    assert info.retry_can_help is retry
    assert _kind_of(info) == kind
    assert _kind_by_sign(code) == kind
    # Outside every range PicWish uses, so the sign rule holds and codes never collide.
    assert code >= 100 or code <= -101
    assert code not in PICWISH_CODES


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("WAITING_TO_SEND", 100),
        ("SENDING", 101),
        ("SAVING_RESULT", 102),
        ("REJECTED", -101),
        ("REFUSED", -102),
        ("RESULT_EXPIRED", -103),
        ("CANCELED", -104),
        ("DEADLINE_PASSED", -105),
        ("SERVICE_ERROR", -106),
        ("UPSTREAM_LOST", -107),
        ("COMPLETED", 1),
        ("QUEUED", 0),
        ("INVALID_IMAGE", -7),
        ("TIMED_OUT", -8),
    ],
)
def test_names_the_code_base_uses_keep_their_codes(name, code):
    assert states.State[name] == code


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (100, "waiting to be sent"),
        (101, "sending"),
        (102, "saving the result"),
        (-101, "rejected before sending"),
        (-102, "refused"),
        (-103, "expired"),
        (-104, "canceled"),
        (-105, "in time"),
        (-106, "service error"),
        (-107, "lost"),
    ],
)
def test_own_code_labels(code, words):
    assert words in states.STATES[code].label.lower()


# --- 4. Every entry is complete and consistent -----------------------------------------------


@pytest.mark.parametrize("code", sorted(ALL_CODES))
def test_entry_is_complete(code):
    info = states.STATES[code]
    assert isinstance(info.label, str) and info.label.strip()
    assert info.reason.strip()
    assert info.advice.strip()
    assert info.reason.endswith("."), f"reason for {code} should end with a full stop"


@pytest.mark.parametrize("code", sorted(ALL_CODES))
def test_retry_rules(code):
    info = states.STATES[code]
    if info.category == "transient":
        assert info.retry_can_help is True
    if info.category in ("content", "input"):
        assert info.retry_can_help is False
    assert info.retried_automatically is (ALL_CODES[code][0] == "transient")


def test_which_codes_are_retried_automatically():
    automatic = {code for code, info in states.STATES.items() if info.retried_automatically}
    assert automatic == {-2, -8, -9, -13, -15, -103, -105}


def test_content_and_input_failures_are_never_retried():
    never = {code for code, info in states.STATES.items() if info.category in ("content", "input")}
    assert never == {-5, -7, -10, -14, -16, -17, -101}
    assert not any(states.STATES[code].retried_automatically for code in never)


# --- 5. Codes nobody documented --------------------------------------------------------------


@pytest.mark.parametrize("code", UNDOCUMENTED_NEGATIVE)
def test_unknown_negative_code_is_a_generic_failure(code):
    assert code not in states.STATES
    info = states.describe(code)
    assert info.code == code
    assert info.is_failure and not info.is_success and not info.is_in_progress
    assert str(code) in info.label or str(code) in info.reason
    assert info.category == "provider"
    assert info.reason.endswith(".")
    assert info.advice.strip()
    assert not info.retried_automatically
    assert states.is_final(code)


@pytest.mark.parametrize("code", UNDOCUMENTED_POSITIVE)
def test_unknown_positive_code_is_in_progress(code):
    assert code not in states.STATES
    info = states.describe(code)
    assert info.code == code
    assert info.is_in_progress and not info.is_failure and not info.is_success
    assert info.category == "in_progress"
    assert str(code) in info.label
    assert info.reason.endswith(".")
    assert not states.is_final(code)


@pytest.mark.parametrize(
    ("code", "final"),
    [(1, True), (-1, True), (-104, True), (-4, True), (0, False), (100, False), (7, False)],
)
def test_is_final(code, final):
    assert states.is_final(code) is final


# --- 6. Final codes --------------------------------------------------------------------------


def test_final_codes_are_success_and_the_failures():
    expected = {
        1,
        *(-17, -16, -15, -14, -13, -11, -10, -9, -8, -7, -5, -3, -2, -1),
        *(-101, -102, -103, -104, -105, -106, -107, -108, -109),
    }
    assert set(states.FINAL_CODES) == expected
    assert expected == FAILURES | {1}


# --- 7. The enum and the table agree ---------------------------------------------------------


def test_enum_and_table_list_the_same_codes():
    enum_codes = {int(member) for member in states.State}
    assert enum_codes == set(ALL_CODES)
    assert set(states.STATES) == enum_codes


@pytest.mark.parametrize("code", sorted(ALL_CODES))
def test_table_label_is_the_enum_label(code):
    assert states.STATES[code].label == str(states.State(code).label)
