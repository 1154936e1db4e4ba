"""The one table of task state codes.

`Task.state` holds PicWish's codes verbatim (1 success, below 0 failure, anything else in
progress) plus the project's own codes at 100 and above and at -101 and below, ranges PicWish does
not use, so the sign rule holds for every code. Every page, command, the admin and the engines
read this module; nothing else maps codes to words, including the words of a task's timeline
(`StateInfo.milestone`).
"""

from dataclasses import dataclass

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Category(models.TextChoices):
    SUCCESS = "success", _("Success")
    IN_PROGRESS = "in_progress", _("In progress")
    INPUT = "input", _("Problem with the photo")
    CONTENT = "content", _("Content not allowed")
    TRANSIENT = "transient", _("Temporary problem")
    PROVIDER = "provider", _("Service problem")
    CANCELED = "canceled", _("Canceled")


class State(models.IntegerChoices):
    """Names for the codes the code base refers to. The table below describes every code."""

    # PicWish's codes
    COMPLETED = 1, _("Completed")
    QUEUED = 0, _("Queued")
    PREPARING = 2, _("Preparing")
    WAITING = 3, _("Waiting")
    PROCESSING = 4, _("Processing")
    PUBLISHING = 5, _("Publishing the result")
    PROCESSING_LOOP = 6, _("Processing")
    FAILED = -1, _("Restoration failed")
    UPLOAD_RESULT_FAILED = -2, _("Saving the result failed")
    DOWNLOAD_FAILED = -3, _("Photo could not be downloaded")
    URL_FILE_TOO_LARGE = -5, _("Photo too large")
    INVALID_IMAGE = -7, _("Not a valid image")
    TIMED_OUT = -8, _("Timed out")
    LOOP_FAILED = -9, _("Processing failed")
    PROHIBITED_INTERNAL = -10, _("Content not allowed")
    EMPTY_RESULT = -11, _("Empty result")
    CANCELED_BY_EXCEPTION = -13, _("Stopped by an error")
    CONTENT_UNSUITABLE = -14, _("Photo not suitable")
    INSUFFICIENT_RESOURCES = -15, _("Service busy")
    PROHIBITED_THIRD_PARTY = -16, _("Content not allowed")
    INVALID_PROMPT = -17, _("Invalid instructions")
    # The project's own codes
    WAITING_TO_SEND = 100, _("Waiting to be sent")
    SENDING = 101, _("Sending")
    SAVING_RESULT = 102, _("Saving the result")
    REJECTED = -101, _("Rejected before sending")
    REFUSED = -102, _("Refused by PicWish")
    RESULT_EXPIRED = -103, _("Result expired")
    CANCELED = -104, _("Canceled")
    DEADLINE_PASSED = -105, _("No answer in time")
    SERVICE_ERROR = -106, _("Service error")
    UPSTREAM_LOST = -107, _("Task lost by PicWish")
    NOT_SENT = -108, _("Could not be sent")
    RESULT_TOO_LARGE = -109, _("Result too large")


# The sign rule, stated once: 1 is success, below 0 failure, anything else in progress.


def is_failure(code: int) -> bool:
    return code < 0


def is_final(code: int) -> bool:
    return code == State.COMPLETED or is_failure(code)


def is_in_progress(code: int) -> bool:
    return not is_final(code)


# The same rule as a query: the tasks something still has to happen to.
IN_PROGRESS = Q(state__gte=0) & ~Q(state=State.COMPLETED)


@dataclass(frozen=True)
class StateInfo:
    code: int
    label: str
    reason: str  # what happened, for people who are not engineers
    advice: str  # what to do next
    retry_can_help: bool
    category: Category
    # What reaching this state means, for a task's timeline: "{Engine} is processing it".
    # `{engine}` and `{Engine}` name the engine (`said_of`).
    milestone: str

    @property
    def is_success(self) -> bool:
        return self.code == State.COMPLETED

    @property
    def is_failure(self) -> bool:
        return is_failure(self.code)

    @property
    def is_in_progress(self) -> bool:
        return is_in_progress(self.code)

    def said_of(self, engine: str) -> str:
        """The milestone about `engine` ("PicWish", "the built-in engine"): "PicWish is
        processing it", "The built-in engine is processing it"."""
        return self.milestone.format(engine=engine, Engine=engine[:1].upper() + engine[1:])

    @property
    def retried_automatically(self) -> bool:
        """Temporary problems are retried without asking, a bounded number of times."""
        return self.category == Category.TRANSIENT


def _entry(state, reason, advice, retry, category, milestone):
    return StateInfo(int(state), str(state.label), reason, advice, retry, category, milestone)


_IN = Category.IN_PROGRESS
_TRY_LATER = "Nothing to do: it will be tried again automatically, or press Retry."
_TABLE = [
    _entry(
        State.COMPLETED,
        "Your photo has been restored.",
        "Download the result.",
        False,
        Category.SUCCESS,
        "Result saved, ready to download",
    ),
    _entry(
        State.QUEUED,
        "Your photo is in the queue and will be worked on shortly.",
        "Nothing to do: this page updates by itself.",
        False,
        _IN,
        "In {engine}'s queue",
    ),
    _entry(
        State.PREPARING,
        "Your photo is being prepared for restoration.",
        "Nothing to do: this page updates by itself.",
        False,
        _IN,
        "{Engine} is preparing it",
    ),
    _entry(
        State.WAITING,
        "Your photo is waiting for a free restoration slot.",
        "Nothing to do: this page updates by itself.",
        False,
        _IN,
        "Waiting for a free slot at {engine}",
    ),
    _entry(
        State.PROCESSING,
        "Your photo is being restored.",
        "Nothing to do: this page updates by itself.",
        False,
        _IN,
        "{Engine} is processing it",
    ),
    _entry(
        State.PUBLISHING,
        "The restored photo is being prepared for download.",
        "Nothing to do: this page updates by itself.",
        False,
        _IN,
        "{Engine} is preparing the result",
    ),
    _entry(
        State.PROCESSING_LOOP,
        "Your photo is being restored.",
        "Nothing to do: this page updates by itself.",
        False,
        _IN,
        "{Engine} is processing it",
    ),
    _entry(
        State.FAILED,
        "The restoration service could not restore this photo.",
        "Try again; if it fails again, try a different operation or a clearer scan.",
        True,
        Category.PROVIDER,
        "{Engine} could not restore it",
    ),
    _entry(
        State.UPLOAD_RESULT_FAILED,
        "The photo was restored, but the service could not save the result.",
        _TRY_LATER,
        True,
        Category.TRANSIENT,
        "{Engine} restored it but could not save the result",
    ),
    _entry(
        State.DOWNLOAD_FAILED,
        "The restoration service could not fetch your photo from us.",
        "Try again in a few minutes.",
        True,
        Category.PROVIDER,
        "{Engine} could not fetch the photo",
    ),
    _entry(
        State.URL_FILE_TOO_LARGE,
        "The photo is larger than 30 MB, the most the service takes.",
        "Save it as a JPG or scale it down, then upload it again.",
        False,
        Category.INPUT,
        "Stopped: the photo is larger than 30 MB",
    ),
    _entry(
        State.INVALID_IMAGE,
        "The file is damaged or is not a photo we can read.",
        "Open it on your computer to check it, save it again as JPG or PNG, and upload it.",
        False,
        Category.INPUT,
        "Stopped: the file is not an image that can be read",
    ),
    _entry(
        State.TIMED_OUT,
        "The restoration took longer than the 3 minutes allowed.",
        _TRY_LATER,
        True,
        Category.TRANSIENT,
        "{Engine} took longer than allowed",
    ),
    _entry(
        State.LOOP_FAILED,
        "The restoration service had an internal fault.",
        _TRY_LATER,
        True,
        Category.TRANSIENT,
        "{Engine} had an internal fault",
    ),
    _entry(
        State.PROHIBITED_INTERNAL,
        "The service's content review found material it does not allow.",
        "This photo cannot be processed. Contact support if you think this is a mistake.",
        False,
        Category.CONTENT,
        "Stopped by {engine}'s content review",
    ),
    _entry(
        State.EMPTY_RESULT,
        "The restoration finished but produced an empty picture.",
        "Try again, or try a different operation.",
        True,
        Category.PROVIDER,
        "{Engine} produced an empty picture",
    ),
    _entry(
        State.CANCELED_BY_EXCEPTION,
        "The service stopped the restoration after an error.",
        _TRY_LATER,
        True,
        Category.TRANSIENT,
        "{Engine} stopped after an error",
    ),
    _entry(
        State.CONTENT_UNSUITABLE,
        "The photo does not suit this operation (for example, no face where one is needed).",
        "Choose another operation, or a photo that shows what the operation needs.",
        False,
        Category.INPUT,
        "Stopped: the photo does not suit this operation",
    ),
    _entry(
        State.INSUFFICIENT_RESOURCES,
        "The restoration service was too busy to take it.",
        _TRY_LATER,
        True,
        Category.TRANSIENT,
        "{Engine} was too busy to take it",
    ),
    _entry(
        State.PROHIBITED_THIRD_PARTY,
        "An outside content review found material the service does not allow.",
        "This photo cannot be processed. Contact support if you think this is a mistake.",
        False,
        Category.CONTENT,
        "Stopped by an outside content review",
    ),
    _entry(
        State.INVALID_PROMPT,
        "The instructions sent with the photo were not accepted.",
        "Change the options and try again.",
        False,
        Category.INPUT,
        "Stopped: the instructions were not accepted",
    ),
    _entry(
        State.WAITING_TO_SEND,
        "Your photo is uploaded and waiting to be sent for restoration.",
        "Nothing to do: this page updates by itself.",
        False,
        _IN,
        "Waiting to be sent to {engine}",
    ),
    _entry(
        State.SENDING,
        "Your photo is being sent for restoration.",
        "Nothing to do: this page updates by itself.",
        False,
        _IN,
        "Being sent to {engine}",
    ),
    _entry(
        State.SAVING_RESULT,
        "The restored photo is being saved to your account.",
        "Nothing to do: this page updates by itself.",
        False,
        _IN,
        "{Engine} finished; saving the result",
    ),
    _entry(
        State.REJECTED,
        "The photo does not meet this operation's limits, so it was not sent.",
        "Check the size and format limits for the operation and upload a suitable photo.",
        False,
        Category.INPUT,
        "Not sent: outside the operation's limits",
    ),
    _entry(
        State.REFUSED,
        "The restoration service refused the request.",
        "Try a different operation or photo. An administrator has been shown the details.",
        False,
        Category.PROVIDER,
        "{Engine} refused the request",
    ),
    _entry(
        State.RESULT_EXPIRED,
        "The restored photo expired at the service before we could save it.",
        _TRY_LATER,
        True,
        Category.TRANSIENT,
        "The result expired at {engine} before it was saved",
    ),
    _entry(
        State.CANCELED,
        "This restoration was canceled before it finished.",
        "Press Retry if you want it done after all.",
        True,
        Category.CANCELED,
        "Canceled",
    ),
    _entry(
        State.DEADLINE_PASSED,
        "The restoration service did not finish in time.",
        _TRY_LATER,
        True,
        Category.TRANSIENT,
        "{Engine} did not finish in time",
    ),
    _entry(
        State.SERVICE_ERROR,
        "The restoration service kept failing to answer.",
        "Try again later; if it keeps happening, tell an administrator.",
        True,
        Category.PROVIDER,
        "{Engine} kept failing to answer",
    ),
    _entry(
        State.UPSTREAM_LOST,
        "The restoration service no longer knows this task.",
        "Press Retry to send the photo again.",
        True,
        Category.PROVIDER,
        "{Engine} no longer knows the task",
    ),
    _entry(
        State.NOT_SENT,
        "The photo could not be sent for restoration, although we tried several times.",
        "Press Retry; if it keeps failing, tell an administrator.",
        True,
        Category.PROVIDER,
        "Could not be sent to {engine}",
    ),
    _entry(
        State.RESULT_TOO_LARGE,
        "The restored photo the service returned is larger than this site can store.",
        "Try a smaller photo or a smaller enlargement.",
        False,
        Category.PROVIDER,
        "The result is too large to store",
    ),
]
STATES: dict[int, StateInfo] = {info.code: info for info in _TABLE}

# Codes at which nothing more will happen to a task.
FINAL_CODES = frozenset(code for code in STATES if is_final(code))


class Group(models.TextChoices):
    """What the task list filters by: five groups a person asks about, each a set of codes."""

    WAITING = "waiting", _("Waiting")
    IN_PROGRESS = "in_progress", _("In progress")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")
    CANCELED = "canceled", _("Canceled")


# Not yet worked on: waiting for the dispatcher, being sent, or queued at an engine.
WAITING_CODES = frozenset({State.WAITING_TO_SEND, State.SENDING, State.QUEUED})


def group_of(code: int) -> Group:
    """The group of a code, by the sign rule and the table's canceled code."""
    if code == State.COMPLETED:
        return Group.DONE
    if code == State.CANCELED:
        return Group.CANCELED
    if is_failure(code):
        return Group.FAILED
    if code in WAITING_CODES:
        return Group.WAITING
    return Group.IN_PROGRESS


# The same groups as queries, so a filter and `group_of` cannot disagree (a test checks each
# code of the table against both).
GROUP_QUERIES: dict[Group, Q] = {
    Group.WAITING: Q(state__in=sorted(WAITING_CODES)),
    Group.IN_PROGRESS: IN_PROGRESS & ~Q(state__in=sorted(WAITING_CODES)),
    Group.DONE: Q(state=State.COMPLETED),
    Group.FAILED: Q(state__lt=0) & ~Q(state=State.CANCELED),
    Group.CANCELED: Q(state=State.CANCELED),
}


def describe(code: int) -> StateInfo:
    """The entry for a code; codes nobody has documented get a generic entry naming the code."""
    if code in STATES:
        return STATES[code]
    if is_failure(code):
        return StateInfo(
            code,
            f"Failed (code {code})",
            f"The restoration failed with a code we do not recognise ({code}).",
            "Try again; if it keeps failing, tell an administrator the code.",
            True,
            Category.PROVIDER,
            f"Failed at {{engine}} (code {code})",
        )
    return StateInfo(
        code,
        f"In progress (code {code})",
        "Your photo is being worked on.",
        "Nothing to do: this page updates by itself.",
        False,
        Category.IN_PROGRESS,
        f"In progress at {{engine}} (code {code})",
    )
