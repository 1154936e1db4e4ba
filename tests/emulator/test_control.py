"""The control API under /_emulator/: run-time config, reset, scripts."""

import uuid

from emulator import EmulatorConfig
from tests.emulator.support import (
    api_client,
    control,
    create,
    created_id,
    error_of,
    poll,
    wait_final,
)


def test_config_changes_at_run_time(emulator, client):
    response = control(emulator, "config", {"api_key": "rotated", "qps": 50})
    assert response.status_code == 200
    config = response.json()
    assert config["api_key"] == "rotated" and config["qps"] == 50
    assert set(config) == set(vars(EmulatorConfig()))
    assert error_of(create(client)) == (401, 401)
    with api_client(emulator.url, "rotated") as rotated:
        assert rotated.get(f"/api/tasks/visual/scale/{uuid.uuid4()}").status_code == 404

    for bad in ({"qps": 0}, {"no_such_field": 1}, {"failure_rates": {"-8": 2}}):
        assert error_of(control(emulator, "config", bad)) == (400, 400)
    assert emulator.config.qps == 50


def test_reset_clears_tasks_and_counters_but_keeps_config(emulator, client):
    emulator.configure(slots=2)
    task_id = created_id(create(client))
    emulator.script(poll=[500])
    assert control(emulator, "reset").status_code == 200
    counters = client.get("/_emulator/counters").json()
    assert counters["tasks"] == {} and counters["create"] == {}
    assert error_of(poll(client, task_id)) == (404, 404)  # not the scripted 500
    assert emulator.config.slots == 2


def test_script_over_http_and_its_validation(emulator, client):
    script = {"create": [429], "outcomes": [-10, {"state": 1, "duration": 0}]}
    assert control(emulator, "script", script).json() == {"create": 1, "poll": 0, "outcomes": 2}
    assert error_of(create(client)) == (429, 429)
    states = [wait_final(client, created_id(create(client)))[0]["state"] for _ in range(2)]
    assert states == [-10, 1]
    for bad in ({"poll": ["drop_after_create"]}, {"create": [418]}, {"outcomes": ["x"]}):
        assert error_of(control(emulator, "script", bad)) == (400, 400)


def test_a_poll_reports_the_configured_progress_curve(emulator, client):
    answer = control(emulator, "config", {"progress_curve": "plateaus"})
    assert answer.json()["progress_curve"] == "plateaus"
    emulator.script(outcomes=[{"state": 1, "duration": 1.0}])
    final, seen = wait_final(client, created_id(create(client)))
    plateau = {2: {10}, 4: {40, 60}, 6: {40, 60}, 5: {90}, 0: {0}, 3: {0}}
    assert all(data["progress"] in plateau[data["state"]] for data in seen[:-1])
    assert {data["progress"] for data in seen} >= {10, 40, 60, 90}
    assert final["progress"] == 100

    emulator.configure(progress_curve="stuck")
    emulator.script(outcomes=[{"state": 1, "duration": 0.5}])
    final, seen = wait_final(client, created_id(create(client)))
    assert {data["progress"] for data in seen[:-1]} <= {0, 50} and final["progress"] == 100
    bad = control(emulator, "config", {"progress_curve": "wobbly"})
    assert error_of(bad) == (400, 400) and "progress_curve" in bad.json()["message"]


def test_unknown_control_actions_are_404(emulator):
    assert error_of(control(emulator, "shutdown", {})) == (404, 404)
