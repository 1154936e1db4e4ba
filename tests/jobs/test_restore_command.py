"""`manage.py restore`: uploads from disk, all or nothing, and waiting through retries."""

import hashlib
import io
import json

import pytest
from django.core.management import CommandError, call_command

from config.celery_app import app as celery_app
from restorations.engines import local
from restorations.jobs import local_runs, services
from restorations.jobs.management.commands import restore
from restorations.jobs.models import Task, Upload
from restorations.jobs.states import State
from tests.factories import photo_bytes, stored_files

pytestmark = pytest.mark.django_db

REQUIRED_FIELDS = {
    "id",
    "file",
    "state",
    "state_label",
    "reason",
    "remote_task_id",
    "result_sha256",
    "poll_count",
    "retry_of",
    "operation",
    "engine",
    "progress",
    "result_bytes",
    "result_width",
    "result_height",
}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def eager():
    """Run Celery tasks in-process as soon as they are sent.

    Tests using it are marked django_db(transaction=True): the command commits its tasks and
    only then are their Celery tasks sent, which must happen while the command waits.
    """
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def folder(tmp_path):
    path = tmp_path / "scans"
    path.mkdir()
    (path / "b.jpg").write_bytes(photo_bytes(80, 60, fmt="JPEG", seed=2))
    (path / "a.png").write_bytes(photo_bytes(64, 48, seed=1))
    return path


def run(*args, stdout=None) -> tuple[str, str]:
    out, err = stdout or io.StringIO(), io.StringIO()
    call_command("restore", *map(str, args), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_failing(*args) -> tuple[CommandError, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("restore", *map(str, args), stdout=out, stderr=err)
    return caught.value, out.getvalue(), err.getvalue()


def json_lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines()]


def assert_nothing_created(media_root):
    assert Task.objects.count() == 0
    assert Upload.objects.count() == 0
    assert stored_files(media_root) == []


@pytest.mark.django_db(transaction=True)
def test_a_folder_is_restored_and_reported_as_json(studio, alice, folder, eager):
    out, _err = run(folder, "--team", "studio", "--wait", "--json")
    records = json_lines(out)
    tasks = list(Task.objects.order_by("created_at", "pk"))
    assert [r["file"] for r in records] == ["a.png", "b.jpg"]  # sorted by name
    assert [r["id"] for r in records] == [str(t.public_id) for t in tasks]
    for record, task in zip(records, tasks, strict=True):
        assert record.keys() >= REQUIRED_FIELDS
        assert record["state"] == State.COMPLETED == task.state
        assert record["state_label"] == task.state_info.label
        assert record["reason"] == task.state_info.reason
        assert record["retry_of"] is None
        assert record["operation"] == "restoration-old-photo"
        assert record["engine"] == task.engine == "local"
        with task.result.open("rb") as result:
            assert record["result_sha256"] == hashlib.sha256(result.read()).hexdigest()
        assert record["result_bytes"] == task.result.size
        assert (record["result_width"], record["result_height"]) == (
            task.result_width,
            task.result_height,
        )
        assert task.team == studio and task.created_by == alice  # the team's owner


def test_user_uploads_to_the_personal_team_as_that_user(bob, studio, folder):
    out, _err = run(folder / "a.png", "--user", "bob")
    task = Task.objects.get()
    assert task.team == bob.personal_team() and task.created_by == bob
    assert out == f"{task.public_id}  {folder / 'a.png'}\n"


def test_json_without_wait_lists_the_waiting_tasks(studio, folder):
    out, _err = run(folder, "--team", "studio", "--json", "--operation", "scale")
    records = json_lines(out)
    assert [r["state"] for r in records] == [State.QUEUED] * 2
    assert {r["id"] for r in records} == {str(t.public_id) for t in Task.objects.all()}
    assert all(r["operation"] == "scale" and r["result_sha256"] is None for r in records)
    assert all(r["remote_task_id"] is None and r["retry_of"] is None for r in records)


def test_options_reach_the_task(studio, folder):
    run(
        folder / "a.png",
        "--team",
        "studio",
        "--option",
        "restoration_type=2",
        "--option",
        "change_color=0",
    )
    options = Task.objects.get().options
    assert options == {"restoration_type": "2", "model_type": "1", "change_color": "0"}


def test_a_bad_file_among_good_ones_creates_nothing(studio, folder, media_root):
    (folder / "notes.jpg").write_text("shopping list")
    error, _out, err = run_failing(folder, "--team", "studio")
    assert "notes.jpg" in str(error) and error.returncode == restore.EXIT_REFUSED
    assert f"{folder / 'notes.jpg'}: This file is not a photo we can read" in err
    assert "a.png" not in err  # only the problem is named
    assert_nothing_created(media_root)


def test_a_folder_skips_hidden_subfolder_and_non_image_files(studio, folder):
    (folder / ".thumb.png").write_bytes(photo_bytes())
    (folder / "notes.txt").write_text("not a photo")
    (folder / "inner").mkdir()
    (folder / "inner" / "c.png").write_bytes(photo_bytes())
    out, err = run(folder, folder / "a.png", "--team", "studio", "--json")
    assert [r["file"] for r in json_lines(out)] == ["a.png", "b.jpg"]  # a.png once
    assert f"{folder / 'notes.txt'}: skipped" in err
    assert ".thumb.png" not in err


def test_a_file_named_on_its_own_is_checked_whatever_its_name(studio, tmp_path, media_root):
    named = tmp_path / "notes.txt"
    named.write_text("not a photo")
    error, _out, err = run_failing(named, tmp_path / "missing.png", "--team", "studio")
    assert f"{named}: This file is not a photo we can read" in err
    assert f"{tmp_path / 'missing.png'}: The file cannot be read" in err
    assert "2 of 2 files" in str(error)
    assert_nothing_created(media_root)


def test_a_folder_without_images_is_an_error(studio, tmp_path):
    error, _out, _err = run_failing(tmp_path, "--team", "studio")
    assert "No photos to upload" in str(error)


@pytest.mark.parametrize(
    ("option", "fragments"),
    [
        ("colour=1", ["has no option colour", "restoration_type"]),
        ("restoration_type=9", ["must be one of", "restoration_type=0|1|2, model_type=1|2|3"]),
        ("model_type=2", ["applies only when", "model_type=1|2|3"]),
        ("restoration_type", ["KEY=VALUE"]),
    ],
)
def test_bad_options_create_nothing(studio, folder, media_root, option, fragments):
    error, _out, _err = run_failing(folder, "--team", "studio", "--option", option)
    assert all(fragment in str(error) for fragment in fragments), str(error)
    assert error.returncode == restore.EXIT_REFUSED
    assert_nothing_created(media_root)


def test_an_unknown_operation_is_refused_by_the_parser(studio, folder, media_root):
    error, _out, _err = run_failing(folder, "--team", "studio", "--operation", "sharpen")
    assert "invalid choice" in str(error)
    assert_nothing_created(media_root)


@pytest.mark.parametrize(
    ("who", "message"),
    [
        ([], "one of the arguments --team --user is required"),
        (["--team", "studio", "--user", "alice"], "not allowed with argument"),
        (["--team", "nowhere"], "No team has the slug “nowhere”"),
        (["--user", "nobody"], "No user is named “nobody”"),
    ],
)
def test_the_uploader_must_be_one_known_team_or_user(studio, folder, media_root, who, message):
    error, _out, _err = run_failing(folder, *who)
    assert message in str(error)
    assert_nothing_created(media_root)


def test_a_viewer_may_not_upload(studio, victor, bob):
    with pytest.raises(CommandError, match="victor \\(viewer\\) may not upload") as caught:
        restore.require_uploader(studio, victor)
    assert caught.value.returncode == restore.EXIT_REFUSED
    restore.require_uploader(studio, bob)  # a member may


def test_a_team_without_an_owner_is_refused(studio, folder, media_root):
    studio.memberships.filter(role="owner").update(role="admin")
    error, _out, _err = run_failing(folder, "--team", "studio")
    assert "has no owner" in str(error)
    assert_nothing_created(media_root)


def test_a_storage_failure_midway_leaves_no_rows_or_files(studio, folder, media_root, monkeypatch):
    real_create = services.create_task

    def fail_on_second(**kwargs):
        if Task.objects.exists():
            raise OSError("disk full")
        return real_create(**kwargs)

    monkeypatch.setattr(services, "create_task", fail_on_second)
    with pytest.raises(OSError, match="disk full"):
        run(folder, "--team", "studio")
    assert_nothing_created(media_root)


@pytest.mark.django_db(transaction=True)
def test_wait_follows_an_automatic_retry(studio, folder, eager, monkeypatch):
    real_run = local.run
    timed_out = []

    def time_out_the_first_attempt(*args, progress, **kwargs):
        if not timed_out:  # PicWish would report -8; services then creates the retry
            timed_out.append(Task.objects.get(state=State.PROCESSING))
            services.fail(timed_out[0], State.TIMED_OUT)
        return real_run(*args, progress=progress, **kwargs)

    monkeypatch.setattr(local, "run", time_out_the_first_attempt)
    out, _err = run(folder / "a.png", "--team", "studio", "--wait", "--json")
    first, retry = json_lines(out)
    assert first["id"] == str(timed_out[0].public_id)
    assert (first["state"], first["retry_of"]) == (State.TIMED_OUT, None)
    assert (retry["state"], retry["retry_of"]) == (State.COMPLETED, first["id"])
    assert retry["file"] == first["file"] == "a.png"


def test_wait_polls_until_the_newest_attempt_is_final(studio, folder, monkeypatch):
    def time_out_the_first_attempt():
        services.fail(Task.objects.get(), State.TIMED_OUT)  # creates a waiting retry

    def complete_the_retry():
        local_runs.run(Task.objects.get(retry_of__isnull=False).pk)

    worker_steps = iter([time_out_the_first_attempt, complete_the_retry])
    # Each pause between polls lets the "worker" take one step; a third poll would fail here.
    monkeypatch.setattr(restore.time, "sleep", lambda _seconds: next(worker_steps)())
    out, _err = run(folder / "a.png", "--team", "studio", "--wait")
    retry = Task.objects.get(retry_of__isnull=False)
    assert retry.retry_of.state == State.TIMED_OUT and retry.state == State.COMPLETED
    assert out == f"{folder / 'a.png'}: Completed ({retry.public_id}), after 1 retry\n"


@pytest.mark.django_db(transaction=True)
def test_a_failed_photo_is_reported_then_exits_with_failure(studio, folder, eager, monkeypatch):
    def explode(*args, **kwargs):
        raise MemoryError("out of memory")

    monkeypatch.setattr(local, "run", explode)
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 photos failed") as caught:
        call_command("restore", str(folder / "a.png"), "--team=studio", "--wait", stdout=out)
    assert caught.value.returncode == restore.EXIT_FAILED
    task = Task.objects.get()
    info = task.state_info
    assert out.getvalue().splitlines() == [
        f"{folder / 'a.png'}: {info.label} ({task.public_id})",
        f"  {info.reason}",
        f"  {info.advice}",
    ]
    assert task.state == State.FAILED and not err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_terminal_sees_a_progress_bar(studio, folder, eager):
    out, _err = run(folder, "--team", "studio", "--wait", stdout=Terminal())
    progress, first, second, end = out.split("\n")
    assert progress.startswith("\r[") and "2/2 done" in progress
    assert ": Completed (" in first and ": Completed (" in second and end == ""


def test_wait_gives_up_at_the_timeout_naming_the_tasks(studio, folder):
    # No worker runs here: the task stays queued on the built-in engine.
    error, out, _err = run_failing(
        folder / "a.png", "--team", "studio", "--wait", "--json", "--timeout", "1"
    )
    task = Task.objects.get()
    assert error.returncode == restore.EXIT_TIMED_OUT
    assert str(task.public_id) in str(error) and "a.png" in str(error)
    assert [r["state"] for r in json_lines(out)] == [State.QUEUED]
    assert task.state == State.QUEUED  # left running


@pytest.mark.parametrize(
    ("done", "failed", "total", "expected"),
    [
        (0, 0, 4, "[....................] 0/4 done"),
        (2, 0, 4, "[##########..........] 2/4 done"),
        (3, 1, 7, "[########............] 3/7 done, 1 failed"),
        (7, 7, 7, "[####################] 7/7 done, 7 failed"),
    ],
)
def test_render_progress(done, failed, total, expected):
    assert restore.render_progress(done, failed, total) == expected
