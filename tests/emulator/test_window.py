"""The QPS window, without HTTP (tests/emulator/test_server.py drives it over HTTP)."""

import pytest

from emulator import QpsWindow


def test_the_window_admits_the_limit_per_rolling_second_and_key():
    window = QpsWindow()
    assert [window.admit("k", 2, now) for now in (0.0, 0.1, 0.5, 0.99)] == [
        True,
        True,
        False,
        False,
    ]
    assert window.admit("other", 2, 0.5)  # per key
    assert window.admit("k", 2, 1.0) and not window.admit("k", 2, 1.05)
    assert window.admit("k", 2, 1.1)
    slow = QpsWindow()  # below 1 QPS: one request per 1/qps seconds
    assert [slow.admit("k", 0.5, now) for now in (0.0, 1.5, 2.0)] == [True, False, True]


def test_the_window_reports_the_tightest_span_of_qps_plus_one_requests():
    window = QpsWindow()
    for now in (0.0, 0.55, 1.1, 1.62):
        assert window.admit("k", 2, now)
    assert window.admit("other", 2, 1.0)  # other keys have their own sequence
    assert window.tightest_span == pytest.approx(1.07)  # 0.55 to 1.62
    assert not window.admit("k", 2, 2.0)  # refused requests arrived too
    assert window.tightest_span == pytest.approx(0.9)
    window.clear()
    assert window.tightest_span is None
