"""Serve the PicWish emulator (restorations/engines/emulator.py) until Ctrl-C."""

import signal
import threading

from django.core.management.base import BaseCommand, CommandError, CommandParser

from restorations.engines.emulator import PROGRESS_CURVES, EmulatorConfig, PicWishEmulator

# Options whose values start with "-" (negative state codes): argparse would read "-8=0.1" as
# an option, so "--fail-code -8=0.1" is joined into "--fail-code=-8=0.1" before parsing.
_NEGATIVE_VALUE_OPTIONS = ("--fail-code", "--failure-codes")


def _code_rate(text: str) -> tuple[int, float]:
    code, separator, rate = text.partition("=")
    try:
        if separator:
            return int(code), float(rate)
    except ValueError:
        pass
    raise ValueError(f"expected CODE=RATE such as -8=0.1, not {text!r}")


def _codes(text: str) -> tuple[int, ...]:
    return tuple(int(code) for code in text.split(",") if code.strip())


def _join_negative_values(argv: list[str]) -> list[str]:
    joined: list[str] = []
    values = iter(argv)
    for arg in values:
        if arg in _NEGATIVE_VALUE_OPTIONS:
            arg = f"{arg}={next(values, '')}"
        joined.append(arg)
    return joined


class Command(BaseCommand):
    help = "Serve an emulated PicWish API on loopback (no PicWish key or network needed)."
    requires_system_checks = []

    def run_from_argv(self, argv: list[str]) -> None:
        super().run_from_argv(_join_negative_values(argv))

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = EmulatorConfig()
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8100)
        parser.add_argument("--key", default=defaults.api_key, help="the X-API-KEY to accept")
        parser.add_argument("--qps", type=float, default=defaults.qps)
        parser.add_argument("--slots", type=int, default=defaults.slots)
        parser.add_argument("--duration-min", type=float, default=defaults.duration_min)
        parser.add_argument("--duration-max", type=float, default=defaults.duration_max)
        parser.add_argument("--failure-rate", type=float, default=defaults.failure_rate)
        parser.add_argument(
            "--failure-codes",
            type=_codes,
            default=defaults.failure_codes,
            help="comma-separated codes failure_rate draws from",
        )
        parser.add_argument(
            "--fail-code",
            type=_code_rate,
            action="append",
            default=[],
            metavar="CODE=RATE",
            help="failure rate of one state code, e.g. -8=0.1 (repeatable)",
        )
        parser.add_argument("--error-500-rate", type=float, default=defaults.error_500_rate)
        parser.add_argument("--drop-rate", type=float, default=defaults.drop_rate)
        parser.add_argument(
            "--body-status-mismatch-rate",
            type=float,
            default=defaults.body_status_mismatch_rate,
        )
        parser.add_argument("--result-ttl", type=float, default=defaults.result_ttl)
        parser.add_argument("--task-ttl", type=float, default=defaults.task_ttl)
        parser.add_argument("--latency", type=float, default=defaults.latency)
        parser.add_argument(
            "--progress-curve",
            choices=PROGRESS_CURVES,
            default=defaults.progress_curve,
            help="how progress moves while a task is processed",
        )
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, **options) -> None:
        config = self._config(options)
        try:
            emulator = PicWishEmulator(config, options["host"], options["port"]).start()
        except OSError as exc:
            raise CommandError(
                f"Cannot listen on {options['host']}:{options['port']}: {exc}"
            ) from exc
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write(f"PicWish emulator at {emulator.url} (X-API-KEY: {config.api_key})")
        self.stdout.flush()
        try:
            while not stop.wait(0.5):
                pass
        finally:
            emulator.stop()
        self.stdout.write("PicWish emulator stopped.")

    def _config(self, options: dict) -> EmulatorConfig:
        try:
            return EmulatorConfig(
                api_key=options["key"],
                qps=options["qps"],
                slots=options["slots"],
                duration_min=options["duration_min"],
                duration_max=options["duration_max"],
                failure_rate=options["failure_rate"],
                failure_codes=options["failure_codes"],
                failure_rates=dict(options["fail_code"]),
                error_500_rate=options["error_500_rate"],
                drop_rate=options["drop_rate"],
                body_status_mismatch_rate=options["body_status_mismatch_rate"],
                result_ttl=options["result_ttl"],
                task_ttl=options["task_ttl"],
                latency=options["latency"],
                progress_curve=options["progress_curve"],
                seed=options["seed"],
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
