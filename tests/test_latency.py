"""A photo on the built-in engine starts within half a second of its upload, on the embedded
default: SQLite and the file-system broker, with worker and beat as separate processes started
from the Procfile as `make run` starts them. It runs benchmarks/bench_latency.py on a few photos.
"""

import argparse
import importlib.util
import shutil
import statistics
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
STARTS_WITHIN = 0.5  # seconds from the upload to "processing", the product's target
# One photo may be later on a machine shared with other work; a polling or backlog regression
# (it was 6 s) is far above either bound.
NONE_LATER_THAN = 1.5


def _benchmark():
    spec = importlib.util.spec_from_file_location(
        "bench_latency", ROOT / "benchmarks" / "bench_latency.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_photos_start_processing_within_half_a_second_on_the_embedded_default():
    if shutil.which("honcho", path=str(ROOT / ".venv" / "bin")) is None:
        pytest.skip("needs the project's .venv (make venv)")
    bench = _benchmark()
    args = argparse.Namespace(photos=5, gap=0.3, operation="scale", seed=1, keep=False)
    rows = bench.Run("embedded", args).run()

    assert [row["state"] for row in rows] == [1] * 5, rows
    starts = [row["processing"] for row in rows]
    assert statistics.median(starts) <= STARTS_WITHIN, starts
    assert max(starts) <= NONE_LATER_THAN, starts
