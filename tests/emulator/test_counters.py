"""Counters of polls per task and of polls of one task in flight at once."""

import threading
import time

from emulator.counters import OverlapTracker
from tests.emulator.support import api_client, create, created_id, poll


def test_each_tasks_polls_are_counted_with_their_times(emulator, client):
    polled, other = created_id(create(client)), created_id(create(client))
    before = time.time()
    poll(client, polled)
    poll(client, polled)
    counters = emulator.counters()
    assert counters["polls_per_task"] == {polled: 2}
    first, second = counters["tasks"][polled]["polled_at"]
    assert before <= first <= second <= time.time()
    assert counters["tasks"][other]["polled_at"] == []


def test_concurrent_polls_of_one_task_are_detected(emulator, client):
    task_id = created_id(create(client))
    emulator.configure(latency=0.3)
    poll(client, task_id)
    poll(client, task_id)
    assert emulator.counters()["max_concurrent_polls_per_task"] == 1

    barrier = threading.Barrier(2)

    def poll_at_once() -> None:
        with api_client(emulator.url) as own:
            barrier.wait()
            assert poll(own, task_id).status_code == 200

    threads = [threading.Thread(target=poll_at_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counters = emulator.counters()
    assert counters["max_concurrent_polls_per_task"] == 2
    assert counters["polls_per_task"][task_id] == 4


def test_overlap_tracker_counts_overlaps_per_key():
    tracker = OverlapTracker()
    with tracker.track("a"), tracker.track("b"):
        pass
    assert tracker.max_seen == 1
    with tracker.track("a"), tracker.track("a"), tracker.track("a"):
        pass
    with tracker.track("a"):
        pass
    assert tracker.max_seen == 3
