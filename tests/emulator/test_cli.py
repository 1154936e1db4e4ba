"""`python -m emulator`: the command line that benchmarks and people start it with."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.emulator.support import api_client, create, created_id, free_port, wait_final, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "emulator", *args],
        cwd=ROOT,
        env={key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_python_m_emulator_serves_until_terminated():
    port = free_port()
    args = ["--port", str(port), "--key", "cli-key", "--qps", "50"]
    args += ["--duration-min", "0", "--duration-max", "0", "--fail-code", "-8=1"]
    process = _start(*args, "--progress-curve", "stuck")
    try:
        url = f"http://127.0.0.1:{port}"
        with api_client(url, "cli-key") as cli:
            wait_until(lambda: _answers(cli), seconds=30)
            config = cli.post("/_emulator/config", json={}).json()
            assert config["progress_curve"] == "stuck" and config["failure_rates"] == {"-8": 1.0}
            final, _ = wait_final(cli, created_id(create(cli)))
        assert final["state"] == -8
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
    assert f"PicWish emulator at {url} (X-API-KEY: cli-key)" in stdout
    assert "PicWish emulator stopped." in stdout


def test_invalid_options_are_refused_before_listening():
    process = _start("--qps", "0", "--port", str(free_port()))
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 2 and "qps must be above 0" in stderr


def _answers(client) -> bool:
    try:
        return client.get("/_emulator/counters").status_code == 200
    except httpx.TransportError:
        return False
