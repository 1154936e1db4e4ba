"""`make run` as a person uses it: it starts web, worker and beat, and one Ctrl-C stops them all.

The test runs the Makefile's own `run` target (the installed .venv is taken as up to date) on
the embedded default: SQLite and the file-system broker in a temporary DESK_VAR_DIR, a free
port, no Redis. A terminal's Ctrl-C sends SIGINT to the foreground process group, so the test
starts make in a group of its own and sends SIGINT to that group.
"""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
STAMP = ROOT / ".venv" / ".installed"
# Variables the settings read; the machine's and the test run's own values are dropped.
CONTROLLED_PREFIXES = ("DJANGO_", "DESK_", "DATABASE_", "CELERY_", "PICWISH_", "AWS_", "FIELD_")
# Left by a `make test` around this run; the inner make must start afresh.
OUTER_MAKE = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
STARTUP_SECONDS = 120
STOP_SECONDS = 10


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def web_answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=2).close()
    except urllib.error.HTTPError:
        return True  # any HTTP answer means the server is serving
    except OSError:
        return False
    return True


def descendants(pid: int) -> set[int]:
    """Every living process below `pid`, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: the fields follow the last ")".
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"  # a zombie has exited; only its parent has not read its status yet


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


@pytest.fixture
def make_run(tmp_path):
    if shutil.which("make") is None or not STAMP.exists():
        pytest.skip("needs make and the project's .venv (make venv)")
    port = free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(CONTROLLED_PREFIXES) and k not in OUTER_MAKE
    }
    env.update(DJANGO_SETTINGS_MODULE="config.settings.local", DESK_VAR_DIR=str(tmp_path / "var"))
    output = open(tmp_path / "make-run.log", "wb")  # noqa: SIM115 (the processes write it)
    process = subprocess.Popen(
        # -o: the .venv is up to date, whatever the file times say; make must not reinstall it.
        [
            "make",
            "--no-print-directory",
            "-o",
            str(STAMP.relative_to(ROOT)),
            "run",
            "HOST=127.0.0.1",
            f"PORT={port}",
        ],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal's foreground job has
    )
    started: set[int] = set()
    try:
        yield process, port, tmp_path / "make-run.log", started
    finally:
        for pid in started | descendants(process.pid) | {process.pid}:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        process.wait(timeout=30)
        output.close()


def test_one_ctrl_c_stops_every_process_of_make_run(make_run):
    process, port, log, started = make_run
    deadline = time.monotonic() + STARTUP_SECONDS
    while not (web_answers(port) and b" ready." in log.read_bytes()):
        assert process.poll() is None, f"make run ended early:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"not up in time:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)
    time.sleep(1)  # beat has sent a few dispatcher runs; the worker is busy with them
    started.update(descendants(process.pid))
    assert len(started) >= 3, "expected at least web, worker and beat"

    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline and (
        process.poll() is None or any(alive(pid) for pid in started)
    ):
        time.sleep(0.1)

    print(f"make run stopped {time.monotonic() - deadline + STOP_SECONDS:.1f} s after Ctrl-C")
    left = [f"{pid} {command_line(pid)}" for pid in sorted(started) if alive(pid)]
    assert process.poll() is not None and not left, (
        f"still running {STOP_SECONDS} s after Ctrl-C: make "
        f"{'exited' if process.poll() is not None else 'waiting'}; {left}\n"
        f"{log.read_text()[-3000:]}"
    )
    assert not listening(port), f"something still listens on port {port}"
