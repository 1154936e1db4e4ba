"""A PicWish task API emulator: a real HTTP server on loopback.

It speaks the create/poll protocol of PicWish's visual endpoints (auth, QPS limit, task states,
result URLs that expire) and adds scriptable faults, so the project's HTTP client, tests and
benchmarks can run without a PicWish key or network. Results come from the built-in engine.
It uses no Django, so it runs the same inside and outside the project; docs/emulator.md describes
every option and the control API under /_emulator/.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import heapq
import hmac
import http.client
import io
import json
import logging
import os
import random
import re
import secrets
import threading
import time
import urllib.request
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from email.utils import collapse_rfc2231_value
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from PIL import Image

from restorations.engines import local

log = logging.getLogger(__name__)

MB = 1024 * 1024
URL_MAX_LENGTH = 512
URL_MAX_BYTES = 30 * MB
URL_TIMEOUT = 10.0
# A body this large cannot be a valid create for any endpoint: refuse it without keeping it.
MAX_BODY_BYTES = 64 * MB
# PicWish's own processing limit; a sync create never waits longer than this.
SYNC_MAX_WAIT = 180.0
SYNC_CHECK_INTERVAL = 0.02
# How often the server loop checks for stop(): stop() waits up to this long.
SHUTDOWN_POLL_INTERVAL = 0.05

# Random failures draw from these; -3 and -5 need an image_url and -7 comes from real corrupt
# input, -17 from prompts no endpoint here takes, so those only happen when they are real or
# scripted.
DEFAULT_FAILURE_CODES = (-1, -2, -8, -9, -10, -11, -13, -14, -15, -16)

COMPLETED, QUEUED, PREPARING, WAITING, PROCESSING, PUBLISHING, PROCESSING_LOOP = 1, 0, 2, 3, 4, 5, 6
DOWNLOAD_FAILED, URL_FILE_TOO_LARGE, INVALID_IMAGE, FAILED = -3, -5, -7, -1
STATE_DETAILS = {
    COMPLETED: "Complete",
    QUEUED: "Queued",
    PREPARING: "Preparing",
    WAITING: "Waiting",
    PROCESSING: "Processing",
    PUBLISHING: "Publishing",
    PROCESSING_LOOP: "Processing (loop)",
    -1: "Restoration failed",
    -2: "Uploading the result failed",
    -3: "Downloading the image failed",
    -5: "The image_url file exceeds 30 MB",
    -7: "Invalid image file",
    -8: "Processing timed out",
    -9: "Loop processing failed",
    -10: "Internal review found prohibited content",
    -11: "The result is empty",
    -13: "Canceled after an exception",
    -14: "The image does not meet the requirements",
    -15: "Insufficient resources",
    -16: "Third-party review found prohibited content",
    -17: "Invalid prompt",
}
# A queued task reports "waiting" (3) instead of "queued" (0) after this long in the queue.
WAITING_AFTER = 1.0
# Shares of the processing time reported as "preparing" (2, first) and "publishing" (5, last).
PREPARING_SHARE = 0.1
PUBLISHING_SHARE = 0.1
# Share of tasks that report "internal loop processing" (6) instead of "processing" (4).
LOOP_SHARE = 0.25
# How `progress` moves during processing is not documented; see progress_at() for the curves.
PLATEAU_PROGRESS = (10, 40, 60, 90)  # preparing, first and second half of processing, publishing
LATE_JUMP_CREEP = 15  # late_jump creeps from 0 to this, then jumps when processing is over
STUCK_PROGRESS = 50  # stuck reports this from the start of processing until the task is done

SCRIPTABLE_CODES = frozenset({400, 401, 404, 413, 429, 500})
API_KINDS = ("create", "poll")
_CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_RATE_FIELDS = ("failure_rate", "error_500_rate", "drop_rate", "body_status_mismatch_rate")
_CREATE_PATH = re.compile(r"/api/tasks/visual/([\w-]+)")
_POLL_PATH = re.compile(r"/api/tasks/visual/([\w-]+)/([^/]+)")
_RESULT_PATH = re.compile(r"/results/([\w-]+)")
_CONTROL_PREFIX = "/_emulator/"


# --- endpoints ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    max_bytes: int
    max_width: int
    max_height: int
    formats: frozenset[str] | None  # Pillow format names; None: whatever the engine decodes
    params: Mapping[str, tuple[str, ...]]  # accepted values of the endpoint's own parameters


COMMON_PARAMS = {"sync": ("0", "1"), "return_type": ("1", "2")}
ENDPOINTS: dict[str, Endpoint] = {
    "restoration-old-photo": Endpoint(
        20 * MB - 1,  # "< 20 MB"
        2048,
        2048,
        frozenset({"JPEG", "PNG"}),
        {
            "restoration_type": ("0", "1", "2"),
            "model_type": ("1", "2", "3"),
            "change_color": ("0", "1"),
        },
    ),
    "scale": Endpoint(
        30 * MB, 4096, 4096, None, {"type": ("clean", "face"), "scale_factor": ("", "1", "2", "4")}
    ),
    "scale-pro": Endpoint(
        30 * MB, 4096, 4096, frozenset({"JPEG", "PNG", "BMP", "WEBP", "TIFF"}), {"type": ("0", "1")}
    ),
    "colorization": Endpoint(30 * MB, 4096, 4096, None, {"format": ("jpg", "png", "webp")}),
    "correction": Endpoint(30 * MB, 4096, 4096, None, {"type": ("0", "1", "2", "3", "4")}),
}


# --- configuration -----------------------------------------------------------------------


@dataclass
class EmulatorConfig:
    api_key: str = "test-key"
    qps: float = 2.0
    slots: int = 4
    duration_min: float = 2.0
    duration_max: float = 8.0
    failure_rate: float = 0.0
    failure_codes: tuple[int, ...] = DEFAULT_FAILURE_CODES
    failure_rates: dict[int, float] = field(default_factory=dict)
    error_500_rate: float = 0.0
    drop_rate: float = 0.0
    body_status_mismatch_rate: float = 0.0
    result_ttl: float = 3600.0
    task_ttl: float = 3600.0
    latency: float = 0.0  # seconds every accepted create and poll takes before it is handled
    progress_curve: str = "linear"  # how progress moves while processing: see PROGRESS_CURVES
    seed: int | None = None

    def __post_init__(self) -> None:
        # Values may arrive as JSON (string keys, lists, ints for floats): normalise them.
        self.api_key = str(self.api_key)
        self.progress_curve = str(self.progress_curve)
        self.slots = int(self.slots)
        for name in ("qps", "duration_min", "duration_max", "result_ttl", "task_ttl", "latency"):
            setattr(self, name, float(getattr(self, name)))
        for name in _RATE_FIELDS:
            setattr(self, name, float(getattr(self, name)))
        self.failure_codes = tuple(int(code) for code in self.failure_codes)
        self.failure_rates = {int(code): float(rate) for code, rate in self.failure_rates.items()}
        self.seed = None if self.seed is None else int(self.seed)
        self._validate()

    def _validate(self) -> None:
        rules = [
            (all(0 <= getattr(self, name) <= 1 for name in _RATE_FIELDS),
             f"{', '.join(_RATE_FIELDS)} must be within 0..1"),
            (self.qps > 0, "qps must be above 0"),
            (self.slots >= 1, "slots must be at least 1"),
            (0 <= self.duration_min <= self.duration_max, "need 0 <= duration_min <= duration_max"),
            (min(self.result_ttl, self.task_ttl, self.latency) >= 0,
             "result_ttl, task_ttl and latency must not be negative"),
            (all(code < 0 for code in (*self.failure_codes, *self.failure_rates)),
             "failure codes must be negative"),
            (_valid_rates(self.failure_rates.values()),
             "failure_rates must be within 0..1 and sum to at most 1"),
            (self.failure_codes or not self.failure_rate,
             "failure_rate needs at least one failure code"),
            (self.progress_curve in PROGRESS_CURVES,
             f"progress_curve must be one of {', '.join(PROGRESS_CURVES)}"),
        ]  # fmt: skip
        problems = [message for holds, message in rules if not holds]
        if problems:
            raise ValueError("; ".join(problems))

    def as_json(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["failure_codes"] = list(self.failure_codes)
        values["failure_rates"] = {str(code): rate for code, rate in self.failure_rates.items()}
        return values


def _valid_rates(rates: Iterable[float]) -> bool:
    rates = list(rates)
    return all(0 <= rate <= 1 for rate in rates) and sum(rates) <= 1


# --- scripting ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What a scripted task does: its final state, and optionally its duration."""

    state: int | None = None  # None: drawn as usual
    duration: float | None = None
    expire_result: bool = False

    @classmethod
    def parse(cls, value: int | Mapping[str, Any] | Outcome) -> Outcome:
        if isinstance(value, Outcome):
            return value
        if isinstance(value, Mapping):
            unknown = set(value) - {"state", "duration", "expire_result"}
            if unknown:
                raise ValueError(f"Unknown outcome fields: {', '.join(sorted(unknown))}")
            state, duration = value.get("state"), value.get("duration")
            return cls(
                None if state is None else int(state),
                None if duration is None else float(duration),
                bool(value.get("expire_result", False)),
            )
        if isinstance(value, int) and not isinstance(value, bool):
            return cls(value)
        raise ValueError(f"An outcome is a state code or an object, not {value!r}")


def _parse_action(kind: str, action: int | str) -> int | str:
    allowed = {"drop", "drop_after_create"} if kind == "create" else {"drop"}
    if action in SCRIPTABLE_CODES or action in allowed:
        return action
    raise ValueError(
        f"A {kind} action is one of {sorted(SCRIPTABLE_CODES)} or {sorted(allowed)}, not {action!r}"
    )


# --- tasks -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _JobResult:
    done_at: float
    result: local.LocalResult | None = None
    failure: int | None = None


@dataclass(frozen=True)
class _Task:
    task_id: str
    endpoint: str
    return_type: int
    created_at: float
    started_at: float  # when a slot takes it
    finished_at: float  # when its processing time is over
    outcome: int  # the planned state once processing is over
    processing_code: int
    expire_result: bool
    result_token: str
    # Computes the result of a planned success: fetches image_url and runs the local engine.
    job: Future[_JobResult] | None
    progress_curve: str = "linear"  # the configured curve when the task was created


@dataclass(frozen=True)
class _Snapshot:
    state: int
    progress: int
    processed_at: float = 0.0  # 0 until processing starts
    completed_at: float = 0.0  # 0 until the state is final
    result: local.LocalResult | None = None


def is_final(state: int) -> bool:
    return state == COMPLETED or state < 0


def snapshot(task: _Task, now: float) -> _Snapshot:
    """The task as it stands at `now`; a pure function of its timeline and its result job."""
    if now < task.started_at:
        return _Snapshot(QUEUED if now - task.created_at < WAITING_AFTER else WAITING, 0)
    if now < task.finished_at:
        fraction = (now - task.started_at) / (task.finished_at - task.started_at)
        progress = progress_at(task.progress_curve, fraction)
        return _Snapshot(_processing_state(task, fraction), progress, task.started_at)
    if task.job is not None:
        return _job_snapshot(task, task.job)
    completed_at = task.finished_at if is_final(task.outcome) else 0.0
    return _Snapshot(task.outcome, _ended(task), task.started_at, completed_at)


def _linear(fraction: float) -> int:
    return int(99 * fraction)


def _plateaus(fraction: float) -> int:
    # One step per reported state, and two in processing, so each step ends when a state does.
    middle = PREPARING_SHARE + (1 - PREPARING_SHARE - PUBLISHING_SHARE) / 2
    steps = (PREPARING_SHARE, middle, 1 - PUBLISHING_SHARE)
    return PLATEAU_PROGRESS[sum(fraction >= step for step in steps)]


def _late_jump(fraction: float) -> int:
    return 99 if fraction >= 1 else int(LATE_JUMP_CREEP * fraction)


def _stuck(fraction: float) -> int:
    return STUCK_PROGRESS


_CURVES: dict[str, Callable[[float], int]] = {
    "linear": _linear,
    "plateaus": _plateaus,
    "late_jump": _late_jump,
    "stuck": _stuck,
}
PROGRESS_CURVES = tuple(_CURVES)


def progress_at(curve: str, fraction: float) -> int:
    """The progress reported `fraction` (0..1) of the way through a task's processing time.

    1 is "the processing time is over but the task is not complete": a failure, or a success
    whose result is still being made. A completed task always reports 100.
    """
    return _CURVES[curve](min(1.0, max(0.0, fraction)))


def _ended(task: _Task) -> int:
    return progress_at(task.progress_curve, 1.0)


def _processing_state(task: _Task, fraction: float) -> int:
    if fraction < PREPARING_SHARE:
        return PREPARING
    if fraction >= 1 - PUBLISHING_SHARE:
        return PUBLISHING
    return task.processing_code


def _job_snapshot(task: _Task, job_future: Future[_JobResult]) -> _Snapshot:
    # Still computing the result, or never will: stop() cancels the jobs that had not started.
    if not job_future.done() or job_future.cancelled():
        return _Snapshot(PUBLISHING, _ended(task), task.started_at)
    job = job_future.result()
    completed_at = max(task.finished_at, job.done_at)
    if job.failure is not None:
        return _Snapshot(job.failure, _ended(task), task.started_at, completed_at)
    return _Snapshot(COMPLETED, 100, task.started_at, completed_at, job.result)


class _TaskFailure(Exception):
    def __init__(self, state: int) -> None:
        super().__init__(STATE_DETAILS[state])
        self.state = state


def produce_result(
    endpoint: str, options: dict[str, str], image: bytes | None, image_url: str | None
) -> _JobResult:
    try:
        data = image if image is not None else _fetch(image_url or "")
        return _JobResult(time.time(), result=_run_engine(endpoint, options, data))
    except _TaskFailure as failure:
        return _JobResult(time.time(), failure=failure.state)
    except Exception:
        log.exception("The local engine failed on a %s task", endpoint)
        return _JobResult(time.time(), failure=FAILED)


def _fetch(url: str) -> bytes:
    # PicWish fetches the URL itself, so no proxy from this process's environment applies.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=URL_TIMEOUT) as response:
            data = response.read(URL_MAX_BYTES + 1)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise _TaskFailure(DOWNLOAD_FAILED) from exc
    if len(data) > URL_MAX_BYTES:
        raise _TaskFailure(URL_FILE_TOO_LARGE)
    return data


def _run_engine(endpoint_name: str, options: dict[str, str], data: bytes) -> local.LocalResult:
    endpoint = ENDPOINTS[endpoint_name]
    peeked = peek_image(data)
    if peeked is None:
        raise _TaskFailure(INVALID_IMAGE)
    fmt, width, height = peeked
    wrong_format = endpoint.formats is not None and fmt not in endpoint.formats
    if wrong_format or width > endpoint.max_width or height > endpoint.max_height:
        raise _TaskFailure(INVALID_IMAGE)
    try:
        return local.run(data, endpoint_name, options, source_format=fmt)
    except local.CorruptImage as exc:
        raise _TaskFailure(INVALID_IMAGE) from exc


def peek_image(data: bytes) -> tuple[str, int, int] | None:
    """Format and size from the image header, or None when Pillow cannot identify it."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return str(image.format), image.width, image.height
    except Exception:  # Pillow reports unreadable headers with many exception types
        return None


# --- requests ----------------------------------------------------------------------------


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class _CreateRequest:
    image: bytes | None
    image_url: str | None
    options: dict[str, str]
    sync: bool
    return_type: int


def parse_create(endpoint: Endpoint, content_type: str, body: bytes) -> _CreateRequest:
    fields = parse_multipart(content_type, body)
    image, raw_url = fields.get("image_file"), fields.get("image_url")
    if (image is None) == (raw_url is None):
        raise _BadRequest(400, "Send exactly one of image_file and image_url.")
    values = {
        name: _text(name, fields[name])
        for name in (*COMMON_PARAMS, *endpoint.params)
        if name in fields
    }
    for name, value in values.items():
        allowed = COMMON_PARAMS.get(name) or endpoint.params[name]
        if value not in allowed:
            shown = ", ".join(repr(v) for v in allowed)
            raise _BadRequest(400, f"Invalid {name} {value!r}: expected one of {shown}.")
    if image is not None:
        _check_upload(endpoint, image)
    image_url = None if raw_url is None else _checked_url(_text("image_url", raw_url))
    return _CreateRequest(
        image,
        image_url,
        {name: value for name, value in values.items() if name not in COMMON_PARAMS},
        values.get("sync") == "1",
        int(values.get("return_type", "1")),
    )


def parse_multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """Field name -> raw content of a multipart/form-data body (RFC 7578)."""
    header = _headers(f"Content-Type: {content_type}".encode("latin-1", "replace"))
    boundary = header.get_boundary()
    if header.get_content_type() != "multipart/form-data" or not boundary:
        raise _BadRequest(400, "The body must be multipart/form-data with a boundary.")
    # Each delimiter is CRLF "--" boundary; the first one may open the body without the CRLF.
    sections = (b"\r\n" + body).split(b"\r\n--" + boundary.encode("latin-1"))
    fields = {}
    for section in sections[1:]:
        if section.startswith(b"--"):
            return fields
        # The rest of the delimiter line is transport padding, then the part's headers.
        _padding, _, part = section.partition(b"\r\n")
        head, separator, content = part.partition(b"\r\n\r\n")
        if not separator and head:
            raise _BadRequest(400, "A multipart part has no end of headers.")
        name = _field_name(_headers(head)) if head else None
        if name:
            fields[name] = content
    raise _BadRequest(400, "The multipart body has no closing boundary.")


def _headers(block: bytes) -> Message:
    return BytesHeaderParser().parsebytes(block + b"\r\n\r\n")


def _field_name(headers: Message) -> str | None:
    name = headers.get_param("name", header="content-disposition")
    return None if name is None else collapse_rfc2231_value(name)


def _text(name: str, value: bytes) -> str:
    try:
        return value.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise _BadRequest(400, f"{name} is not UTF-8 text.") from None


def _check_upload(endpoint: Endpoint, image: bytes) -> None:
    if not image:
        raise _BadRequest(400, "image_file is empty.")
    if len(image) > endpoint.max_bytes:
        raise _BadRequest(
            413, f"The file has {len(image)} bytes; this endpoint takes {endpoint.max_bytes}."
        )
    peeked = peek_image(image)
    if peeked and (peeked[1] > endpoint.max_width or peeked[2] > endpoint.max_height):
        raise _BadRequest(
            413,
            f"The image is {peeked[1]} x {peeked[2]} pixels; this endpoint takes at most "
            f"{endpoint.max_width} x {endpoint.max_height}.",
        )


def _checked_url(url: str) -> str:
    parts = urlsplit(url)
    if len(url) > URL_MAX_LENGTH or parts.scheme not in ("http", "https") or not parts.netloc:
        raise _BadRequest(
            400, f"image_url must be an http(s) URL of at most {URL_MAX_LENGTH} characters."
        )
    return url


# --- answers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Reply:
    status: int
    body: bytes = b""
    content_type: str = "application/json"
    drop: bool = False  # close the connection without answering
    created_task: str | None = None


_DROPPED = _Reply(0, drop=True)


def _json_reply(status: int, payload: dict[str, Any], created_task: str | None = None) -> _Reply:
    return _Reply(status, json.dumps(payload).encode(), created_task=created_task)


def _error(status: int, message: str) -> _Reply:
    return _json_reply(status, {"status": status, "message": message})


_SCRIPTED_MESSAGES = {
    400: "Bad request (scripted)",
    401: "Unauthorized API key (scripted)",
    404: "Not found (scripted)",
    413: "The file is too large (scripted)",
    429: "Too many requests (scripted)",
    500: "Internal server error (scripted)",
}


# --- helpers with their own lock ---------------------------------------------------------


class RateLimiter:
    """At most `limit` admitted requests per key in any rolling window (deques of times).

    `tightest_span` is the shortest time in which `limit` + 1 consecutive requests of one key
    arrived: at or above the window, nothing was refused; how far above is the room a client
    left for jitter.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._admitted: dict[str, deque[float]] = {}
        self._latest: dict[str, deque[float]] = {}
        self.tightest_span: float | None = None

    def admit(self, key: str, qps: float, now: float | None = None) -> bool:
        # Below 1 QPS the window widens so that the long-run rate still equals qps.
        limit, window = max(1, int(qps)), max(1.0, 1 / qps)
        now = time.monotonic() if now is None else now
        with self._lock:
            latest = self._latest.setdefault(key, deque(maxlen=limit))
            if len(latest) == limit:
                span = now - latest[0]
                self.tightest_span = min(span, self.tightest_span or span)
            latest.append(now)
            times = self._admitted.setdefault(key, deque())
            while times and times[0] <= now - window:
                times.popleft()
            if len(times) >= limit:
                return False
            times.append(now)
            return True

    def clear(self) -> None:
        with self._lock:
            self._admitted.clear()
            self._latest.clear()
            self.tightest_span = None


class OverlapTracker:
    """The most requests for one key that were in flight at the same moment."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: Counter[str] = Counter()
        self.max_seen = 0

    @contextmanager
    def track(self, key: str) -> Iterator[None]:
        with self._lock:
            self._active[key] += 1
            self.max_seen = max(self.max_seen, self._active[key])
        try:
            yield
        finally:
            with self._lock:
                self._active[key] -= 1
                if not self._active[key]:
                    del self._active[key]

    def clear(self) -> None:
        with self._lock:
            self.max_seen = 0


@dataclass
class _Stats:
    codes: dict[str, Counter[str]] = field(
        default_factory=lambda: {kind: Counter() for kind in ("create", "poll", "download")}
    )
    rate_limited: int = 0
    dropped: int = 0
    mismatched: int = 0
    expired_downloads: int = 0
    poll_times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    orphans: list[str] = field(default_factory=list)

    def record(self, kind: str, reply: _Reply, mismatched: bool) -> None:
        """Count an answer by the status it means, even when sent as HTTP 200 (`mismatched`)."""
        if reply.drop:
            self.dropped += 1
            return
        self.codes.setdefault(kind, Counter())[str(reply.status)] += 1
        self.rate_limited += int(reply.status == 429)
        self.mismatched += int(mismatched)


# --- the emulator ------------------------------------------------------------------------


class PicWishEmulator:
    def __init__(
        self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._config = dataclasses.replace(config or EmulatorConfig())
        self._address = (host, port)
        self._lock = threading.Lock()  # guards tasks, stats, scripts, slots and the RNG
        self._rng = random.Random(self._config.seed)
        self._limiter = RateLimiter()
        self._overlaps = OverlapTracker()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.url = ""
        self._clear()

    def _clear(self) -> None:
        self._tasks: dict[str, _Task] = {}
        self._results: dict[str, _Task] = {}
        self._slot_free_at: list[float] = []  # heap: when each upstream slot is next free
        self._stats = _Stats()
        self._scripts: dict[str, deque[Any]] = {"create": deque(), "poll": deque()}
        self._outcomes: deque[Outcome] = deque()

    # --- lifecycle

    def start(self) -> PicWishEmulator:
        """Serve in a daemon thread; starting a running emulator changes nothing."""
        if self._server is not None:
            return self
        self._stopping.clear()
        # Results are CPU work: as many threads as cores (at most 4); the task timeline, not
        # this pool, models PicWish's slots.
        workers = max(1, min(4, os.cpu_count() or 1))
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="picwish-emulator")
        self._server = _Server(self._address, self)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL_INTERVAL},
            name="picwish-emulator-http",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def __enter__(self) -> PicWishEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- scripting API

    @property
    def config(self) -> EmulatorConfig:
        return dataclasses.replace(self._config)

    def configure(self, **changes: Any) -> EmulatorConfig:
        unknown = set(changes) - {f.name for f in dataclasses.fields(EmulatorConfig)}
        if unknown:
            raise ValueError(f"Unknown config fields: {', '.join(sorted(unknown))}")
        with self._lock:
            self._config = dataclasses.replace(self._config, **changes)
            if "seed" in changes:
                self._rng.seed(self._config.seed)
            return dataclasses.replace(self._config)

    def reset(self) -> None:
        with self._lock:
            self._clear()
        self._limiter.clear()
        self._overlaps.clear()

    def script(
        self,
        create: Iterable[int | str] = (),
        poll: Iterable[int | str] = (),
        outcomes: Iterable[int | Mapping[str, Any] | Outcome] = (),
    ) -> dict[str, int]:
        """Queue one-shot actions for the next creates and polls, and the next tasks' outcomes."""
        actions = {
            "create": [_parse_action("create", action) for action in create],
            "poll": [_parse_action("poll", action) for action in poll],
        }
        parsed = [Outcome.parse(outcome) for outcome in outcomes]
        with self._lock:
            for kind, queued in actions.items():
                self._scripts[kind].extend(queued)
            self._outcomes.extend(parsed)
            pending = {kind: len(queue) for kind, queue in self._scripts.items()}
            return {**pending, "outcomes": len(self._outcomes)}

    def counters(self) -> dict[str, Any]:
        with self._lock:
            now = time.time()
            stats = self._stats
            return {
                **{kind: dict(sorted(codes.items())) for kind, codes in stats.codes.items()},
                "rate_limited": stats.rate_limited,
                "tightest_window_s": self._limiter.tightest_span,
                "dropped": stats.dropped,
                "mismatched": stats.mismatched,
                "expired_downloads": stats.expired_downloads,
                "polls_per_task": {key: len(times) for key, times in stats.poll_times.items()},
                "max_concurrent_polls_per_task": self._overlaps.max_seen,
                "orphans": list(stats.orphans),
                "tasks": {
                    task.task_id: _task_record(task, now, stats.poll_times.get(task.task_id, []))
                    for task in self._tasks.values()
                },
            }

    # --- request handling

    def handle(self, handler: _Handler, method: str) -> None:
        # Like a gateway, the QPS window counts a request when its headers arrive: a large
        # upload's body does not move it later.
        handler.arrived_at = time.monotonic()
        path = urlsplit(handler.path).path
        body = _read_body(handler) if method == "POST" else b""
        try:
            kind, reply = self._route(method, path, handler, body)
        except Exception:
            log.exception("The PicWish emulator failed on %s %s", method, path)
            kind, reply = "other", _error(500, "Emulator failure")
        mismatched = (
            kind in API_KINDS
            and reply.status >= 400
            and self._chance(self._config.body_status_mismatch_rate)
        )
        if kind != "control":
            with self._lock:
                self._stats.record(kind, reply, mismatched)
        # The body keeps its "status": only the HTTP status line says 200.
        _send(handler, dataclasses.replace(reply, status=200) if mismatched else reply)

    def _route(
        self, method: str, path: str, handler: _Handler, body: bytes | None
    ) -> tuple[str, _Reply]:
        if path.startswith(_CONTROL_PREFIX):
            return "control", self._control(method, path.removeprefix(_CONTROL_PREFIX), body)
        if method == "GET" and (match := _RESULT_PATH.fullmatch(path)):
            return "download", self._download(match[1])
        if method == "POST" and (match := _CREATE_PATH.fullmatch(path)):
            endpoint = match[1]
            if endpoint not in ENDPOINTS:
                return "create", _error(404, f"Unknown endpoint {endpoint!r}")
            if body is None:
                return "create", _error(413, f"The request body exceeds {MAX_BODY_BYTES} bytes.")
            content_type = handler.headers.get("Content-Type", "")
            create = functools.partial(self._create, endpoint, content_type, body)
            return "create", self._serve_api("create", handler, create)
        if method == "GET" and (match := _POLL_PATH.fullmatch(path)):
            endpoint, task_id = match[1], match[2]
            if endpoint not in ENDPOINTS:
                return "poll", _error(404, f"Unknown endpoint {endpoint!r}")
            poll = functools.partial(self._poll, endpoint, task_id)
            with self._overlaps.track(task_id):
                return "poll", self._serve_api("poll", handler, poll)
        return "other", _error(404, "Not found")

    def _serve_api(self, kind: str, handler: _Handler, work: Callable[[], _Reply]) -> _Reply:
        """Script, auth, QPS, latency and random faults around one create or poll."""
        with self._lock:
            action = self._scripts[kind].popleft() if self._scripts[kind] else None
        if action in SCRIPTABLE_CODES:
            return _error(action, _SCRIPTED_MESSAGES[action])
        if action == "drop":
            return _DROPPED
        refusal = self._refusal(handler)
        if refusal is not None:
            return refusal
        time.sleep(self._config.latency)
        fault = action or self._draw_fault(kind)
        if fault == "error_500":
            return _error(500, "Internal server error.")
        if fault == "drop":
            return _DROPPED
        reply = work()
        if fault == "drop_after_create":
            if reply.created_task:
                with self._lock:
                    self._stats.orphans.append(reply.created_task)
            return _DROPPED
        return reply

    def _refusal(self, handler: _Handler) -> _Reply | None:
        """401 for a missing or wrong key, 429 over the key's QPS; None admits the request."""
        config = self._config
        key = handler.headers.get("X-API-KEY")
        if not key:
            return _error(401, "Missing X-API-KEY header.")
        if not hmac.compare_digest(key.encode(), config.api_key.encode()):
            return _error(401, "Unauthorized API key.")
        if not self._limiter.admit(key, config.qps, handler.arrived_at):
            return _error(429, f"Over the QPS limit ({config.qps:g} requests per second).")
        return None

    def _chance(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self._rng.random() < rate

    def _draw_fault(self, kind: str) -> str | None:
        config = self._config
        if self._chance(config.error_500_rate):
            return "error_500"
        if not self._chance(config.drop_rate):
            return None
        # A create can lose its answer before or after the task exists (then it is an orphan).
        if kind == "create" and self._chance(0.5):
            return "drop_after_create"
        return "drop"

    # --- create, poll, download

    def _create(self, endpoint: str, content_type: str, body: bytes) -> _Reply:
        try:
            request = parse_create(ENDPOINTS[endpoint], content_type, body)
        except _BadRequest as error:
            return _error(error.status, str(error))
        task = self._add_task(endpoint, request)
        if request.sync:
            self._wait_until_final(task)
            return _json_reply(200, self._poll_body(task, time.time()), task.task_id)
        data = {"task_id": task.task_id}
        return _json_reply(200, {"status": 200, "message": "success", "data": data}, task.task_id)

    def _add_task(self, endpoint: str, request: _CreateRequest) -> _Task:
        with self._lock:
            config = self._config
            outcome = self._outcomes.popleft() if self._outcomes else Outcome()
            state = self._draw_outcome(config) if outcome.state is None else outcome.state
            duration = outcome.duration
            if duration is None:
                duration = self._rng.uniform(config.duration_min, config.duration_max)
            loop = self._rng.random() < LOOP_SHARE
            now = time.time()
            started_at = self._reserve_slot(now, duration, config.slots)
            job = None
            if state == COMPLETED:
                job = self._executor_or_fail().submit(
                    produce_result, endpoint, request.options, request.image, request.image_url
                )
            task = _Task(
                task_id=str(uuid.uuid4()),
                endpoint=endpoint,
                return_type=request.return_type,
                created_at=now,
                started_at=started_at,
                finished_at=started_at + duration,
                outcome=state,
                processing_code=PROCESSING_LOOP if loop else PROCESSING,
                expire_result=outcome.expire_result,
                result_token=secrets.token_urlsafe(24),
                job=job,
                progress_curve=config.progress_curve,
            )
            self._tasks[task.task_id] = task
            self._results[task.result_token] = task
            return task

    def _executor_or_fail(self) -> ThreadPoolExecutor:
        if self._executor is None:
            raise RuntimeError("The emulator is not running.")
        return self._executor

    def _draw_outcome(self, config: EmulatorConfig) -> int:
        """Per-state rates first, each its own share of the draw; then failure_rate."""
        roll = self._rng.random()
        for code, rate in sorted(config.failure_rates.items()):
            if roll < rate:
                return code
            roll -= rate
        if self._rng.random() < config.failure_rate:
            return self._rng.choice(config.failure_codes)
        return COMPLETED

    def _reserve_slot(self, now: float, duration: float, slots: int) -> float:
        """When the next free slot takes a task that arrives now (slots may change at run time)."""
        free_at = self._slot_free_at
        while len(free_at) < slots:
            heapq.heappush(free_at, 0.0)
        while len(free_at) > slots:
            heapq.heappop(free_at)
        started_at = max(now, heapq.heappop(free_at))
        heapq.heappush(free_at, started_at + duration)
        return started_at

    def _wait_until_final(self, task: _Task) -> None:
        deadline = time.time() + SYNC_MAX_WAIT
        while time.time() < deadline and not is_final(snapshot(task, time.time()).state):
            if self._stopping.wait(SYNC_CHECK_INTERVAL):
                return

    def _poll(self, endpoint: str, task_id: str) -> _Reply:
        now = time.time()
        with self._lock:
            task = self._tasks.get(task_id)
            known = task is not None and task.endpoint == endpoint
            if not known or now - task.created_at > self._config.task_ttl:
                return _error(404, "Task not found.")
            self._stats.poll_times[task_id].append(now)
        return _json_reply(200, self._poll_body(task, now))

    def _poll_body(self, task: _Task, now: float) -> dict[str, Any]:
        current = snapshot(task, now)
        data: dict[str, Any] = {
            "task_id": task.task_id,
            "state": current.state,
            "state_detail": STATE_DETAILS.get(current.state, f"State {current.state}"),
            "progress": current.progress,
            "return_type": task.return_type,
            "created_at": int(task.created_at),
            "processed_at": int(current.processed_at),
            "completed_at": int(current.completed_at),
        }
        if current.result is not None:
            data.update(
                image=self._image_field(task, current.result),
                image_width=current.result.width,
                image_height=current.result.height,
                time_elapsed=round(current.completed_at - current.processed_at, 3),
            )
        return {"status": 200, "message": "success", "data": data}

    def _image_field(self, task: _Task, result: local.LocalResult) -> str:
        if task.return_type == 2:
            return base64.b64encode(result.data).decode("ascii")
        return f"{self.url}/results/{task.result_token}"

    def _download(self, token: str) -> _Reply:
        now = time.time()
        with self._lock:
            task = self._results.get(token)
        current = snapshot(task, now) if task else None
        if current is None or current.result is None:
            return _error(404, "Not found.")
        if task.expire_result or now - current.completed_at > self._config.result_ttl:
            with self._lock:
                self._stats.expired_downloads += 1
            return _error(404, "The result has expired.")
        content_type = _CONTENT_TYPES[current.result.format]
        return _Reply(200, current.result.data, content_type)

    # --- control API

    def _control(self, method: str, action: str, body: bytes | None) -> _Reply:
        if method == "GET" and action == "counters":
            return _json_reply(200, self.counters())
        if method != "POST" or action not in ("config", "reset", "script"):
            return _error(404, "Unknown control action.")
        try:
            payload = json.loads(body or b"{}")
            if not isinstance(payload, dict):
                raise ValueError("The body must be a JSON object.")
            return _json_reply(200, self._control_action(action, payload))
        except (ValueError, TypeError) as error:
            return _error(400, str(error))

    def _control_action(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        if action == "config":
            return self.configure(**payload).as_json()
        if action == "reset":
            self.reset()
            return {"reset": True}
        unknown = set(payload) - {"create", "poll", "outcomes"}
        if unknown:
            raise ValueError(f"Unknown script keys: {', '.join(sorted(unknown))}")
        return self.script(**payload)


def _task_record(task: _Task, now: float, polled_at: list[float]) -> dict[str, Any]:
    current = snapshot(task, now)
    return {
        "endpoint": task.endpoint,
        "state": current.state,
        "created_at": task.created_at,
        "started_at": task.started_at if now >= task.started_at else None,
        "completed_at": current.completed_at or None,
        "polled_at": list(polled_at),
    }


# --- HTTP plumbing -----------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: PicWishEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that hang up mid-request (timeouts, dropped tests) are routine here.
        log.debug("Connection from %s failed", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the project's HTTP client uses it
    # Headers and body go out in separate writes; with Nagle on, the body would wait for the
    # client's delayed ACK (about 40 ms per answer).
    disable_nagle_algorithm = True
    server: _Server
    arrived_at: float  # monotonic time the request's headers were read, set by handle()

    def do_GET(self) -> None:
        self.server.emulator.handle(self, "GET")

    def do_POST(self) -> None:
        self.server.emulator.handle(self, "POST")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes | None:
    """The request body, or None when it is too large to keep (it is read and discarded)."""
    try:
        length = max(0, int(handler.headers.get("Content-Length") or 0))
    except ValueError:
        length = 0
    if length <= MAX_BODY_BYTES:
        return handler.rfile.read(length)
    while length > 0 and (chunk := handler.rfile.read(min(length, MB))):
        length -= len(chunk)
    return None


def _send(handler: BaseHTTPRequestHandler, reply: _Reply) -> None:
    if reply.drop:
        handler.close_connection = True
        return
    handler.send_response(reply.status)
    handler.send_header("Content-Type", reply.content_type)
    handler.send_header("Content-Length", str(len(reply.body)))
    handler.end_headers()
    handler.wfile.write(reply.body)
