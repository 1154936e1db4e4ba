"""What the emulator is told: its configuration, and the scripted outcomes and actions."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .timeline import PROGRESS_CURVES

# Random failures draw from these; -3 and -5 need an image_url and -7 comes from real corrupt
# input, -17 from prompts no endpoint here takes, so those only happen when they are real or
# scripted.
DEFAULT_FAILURE_CODES = (-1, -2, -8, -9, -10, -11, -13, -14, -15, -16)
SCRIPTABLE_CODES = frozenset({400, 401, 404, 413, 429, 500})
_RATE_FIELDS = ("failure_rate", "error_500_rate", "drop_rate", "body_status_mismatch_rate")


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


def parse_action(kind: str, action: int | str) -> int | str:
    """A scripted action for the next create or poll: an HTTP code, or a dropped connection."""
    allowed = {"drop", "drop_after_create"} if kind == "create" else {"drop"}
    if action in SCRIPTABLE_CODES or action in allowed:
        return action
    raise ValueError(
        f"A {kind} action is one of {sorted(SCRIPTABLE_CODES)} or {sorted(allowed)}, not {action!r}"
    )
