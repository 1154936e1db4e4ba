"""The emulator itself: a threaded HTTP server on loopback that answers like PicWish.

`PicWishEmulator` holds the tasks and counters, runs the checks every create and poll passes
(script, key, QPS, latency, random faults) and answers creates, polls and result downloads.
"""

from __future__ import annotations

import dataclasses
import functools
import hmac
import logging
import os
import random
import re
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from . import control
from .config import SCRIPTABLE_CODES, EmulatorConfig, Outcome, parse_action
from .counters import OverlapTracker, Stats, counters_body
from .endpoints import ENDPOINTS, MB
from .replies import DROPPED, SCRIPTED_MESSAGES, Reply, created, error, json_reply, poll_body
from .requests import MAX_BODY_BYTES, BadRequest, CreateRequest, parse_create
from .results import CONTENT_TYPES, has_expired, image_field, produce_result
from .states import COMPLETED, PROCESSING, PROCESSING_LOOP, is_final
from .timeline import LOOP_SHARE, Slots, Task, snapshot
from .window import QpsWindow

log = logging.getLogger(__name__)

# PicWish's own processing limit; a sync create never waits longer than this.
SYNC_MAX_WAIT = 180.0
SYNC_CHECK_INTERVAL = 0.02
# How often the server loop checks for stop(): stop() waits up to this long.
SHUTDOWN_POLL_INTERVAL = 0.05

API_KINDS = ("create", "poll")
_CREATE_PATH = re.compile(r"/api/tasks/visual/([\w-]+)")
_POLL_PATH = re.compile(r"/api/tasks/visual/([\w-]+)/([^/]+)")
_RESULT_PATH = re.compile(r"/results/([\w-]+)")


class PicWishEmulator:
    def __init__(
        self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._config = dataclasses.replace(config or EmulatorConfig())
        self._address = (host, port)
        self._lock = threading.Lock()  # guards tasks, stats, scripts, slots and the RNG
        self._rng = random.Random(self._config.seed)
        self._window = QpsWindow()
        self._overlaps = OverlapTracker()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._executor: ThreadPoolExecutor | None = None
        self.url = ""
        self._clear()

    def _clear(self) -> None:
        self._tasks: dict[str, Task] = {}
        self._results: dict[str, Task] = {}
        self._slots = Slots()
        self._stats = Stats()
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
        self._window.clear()
        self._overlaps.clear()

    def script(
        self,
        create: Iterable[int | str] = (),
        poll: Iterable[int | str] = (),
        outcomes: Iterable[int | Mapping[str, Any] | Outcome] = (),
    ) -> dict[str, int]:
        """Queue one-shot actions for the next creates and polls, and the next tasks' outcomes."""
        actions = {
            "create": [parse_action("create", action) for action in create],
            "poll": [parse_action("poll", action) for action in poll],
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
            return counters_body(
                self._stats,
                self._window.tightest_span,
                self._overlaps.max_seen,
                self._tasks.values(),
                time.time(),
            )

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
            kind, reply = "other", error(500, "Emulator failure")
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
    ) -> tuple[str, Reply]:
        if path.startswith(control.PREFIX):
            action = path.removeprefix(control.PREFIX)
            return "control", control.control(self, method, action, body)
        if method == "GET" and (match := _RESULT_PATH.fullmatch(path)):
            return "download", self._download(match[1])
        if method == "POST" and (match := _CREATE_PATH.fullmatch(path)):
            endpoint = match[1]
            if endpoint not in ENDPOINTS:
                return "create", error(404, f"Unknown endpoint {endpoint!r}")
            if body is None:
                return "create", error(413, f"The request body exceeds {MAX_BODY_BYTES} bytes.")
            content_type = handler.headers.get("Content-Type", "")
            create = functools.partial(self._create, endpoint, content_type, body)
            return "create", self._serve_api("create", handler, create)
        if method == "GET" and (match := _POLL_PATH.fullmatch(path)):
            endpoint, task_id = match[1], match[2]
            if endpoint not in ENDPOINTS:
                return "poll", error(404, f"Unknown endpoint {endpoint!r}")
            poll = functools.partial(self._poll, endpoint, task_id)
            with self._overlaps.track(task_id):
                return "poll", self._serve_api("poll", handler, poll)
        return "other", error(404, "Not found")

    def _serve_api(self, kind: str, handler: _Handler, work: Callable[[], Reply]) -> Reply:
        """Script, auth, QPS, latency and random faults around one create or poll."""
        with self._lock:
            action = self._scripts[kind].popleft() if self._scripts[kind] else None
        if action in SCRIPTABLE_CODES:
            return error(action, SCRIPTED_MESSAGES[action])
        if action == "drop":
            return DROPPED
        refusal = self._refusal(handler)
        if refusal is not None:
            return refusal
        time.sleep(self._config.latency)
        fault = action or self._draw_fault(kind)
        if fault == "error_500":
            return error(500, "Internal server error.")
        if fault == "drop":
            return DROPPED
        reply = work()
        if fault == "drop_after_create":
            if reply.created_task:
                with self._lock:
                    self._stats.orphans.append(reply.created_task)
            return DROPPED
        return reply

    def _refusal(self, handler: _Handler) -> Reply | None:
        """401 for a missing or wrong key, 429 over the key's QPS; None admits the request."""
        config = self._config
        key = handler.headers.get("X-API-KEY")
        if not key:
            return error(401, "Missing X-API-KEY header.")
        if not hmac.compare_digest(key.encode(), config.api_key.encode()):
            return error(401, "Unauthorized API key.")
        if not self._window.admit(key, config.qps, handler.arrived_at):
            return error(429, f"Over the QPS limit ({config.qps:g} requests per second).")
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

    def _create(self, endpoint: str, content_type: str, body: bytes) -> Reply:
        try:
            request = parse_create(ENDPOINTS[endpoint], content_type, body)
        except BadRequest as refused:
            return error(refused.status, str(refused))
        task = self._add_task(endpoint, request)
        if request.sync:
            self._wait_until_final(task)
            return json_reply(200, self._poll_body(task, time.time()), task.task_id)
        return created(task.task_id)

    def _add_task(self, endpoint: str, request: CreateRequest) -> Task:
        with self._lock:
            config = self._config
            outcome = self._outcomes.popleft() if self._outcomes else Outcome()
            state = self._draw_outcome(config) if outcome.state is None else outcome.state
            duration = outcome.duration
            if duration is None:
                duration = self._rng.uniform(config.duration_min, config.duration_max)
            loop = self._rng.random() < LOOP_SHARE
            now = time.time()
            started_at = self._slots.reserve(now, duration, config.slots)
            job = None
            if state == COMPLETED:
                job = self._executor_or_fail().submit(
                    produce_result, endpoint, request.options, request.image, request.image_url
                )
            task = Task(
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

    def _wait_until_final(self, task: Task) -> None:
        deadline = time.time() + SYNC_MAX_WAIT
        while time.time() < deadline and not is_final(snapshot(task, time.time()).state):
            if self._stopping.wait(SYNC_CHECK_INTERVAL):
                return

    def _poll(self, endpoint: str, task_id: str) -> Reply:
        now = time.time()
        with self._lock:
            task = self._tasks.get(task_id)
            known = task is not None and task.endpoint == endpoint
            if not known or now - task.created_at > self._config.task_ttl:
                return error(404, "Task not found.")
            self._stats.poll_times[task_id].append(now)
        return json_reply(200, self._poll_body(task, now))

    def _poll_body(self, task: Task, now: float) -> dict[str, Any]:
        current = snapshot(task, now)
        image = None
        if current.result is not None:
            image = image_field(self.url, task.return_type, task.result_token, current.result)
        return poll_body(task, current, image)

    def _download(self, token: str) -> Reply:
        now = time.time()
        with self._lock:
            task = self._results.get(token)
        current = snapshot(task, now) if task else None
        if current is None or current.result is None:
            return error(404, "Not found.")
        if has_expired(task.expire_result, current.completed_at, now, self._config.result_ttl):
            with self._lock:
                self._stats.expired_downloads += 1
            return error(404, "The result has expired.")
        return Reply(200, current.result.data, CONTENT_TYPES[current.result.format])


# --- HTTP plumbing


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


def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
    if reply.drop:
        handler.close_connection = True
        return
    handler.send_response(reply.status)
    handler.send_header("Content-Type", reply.content_type)
    handler.send_header("Content-Length", str(len(reply.body)))
    handler.end_headers()
    handler.wfile.write(reply.body)
