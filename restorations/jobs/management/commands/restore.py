"""`manage.py restore`: upload photos from disk as restoration tasks and optionally wait for them.

Photos are checked and tasks created exactly as on the upload page (the same operations,
validation and services functions), all or nothing. Usage and output: docs/cli.md.
"""

import json
import time
from dataclasses import dataclass
from pathlib import Path

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

from restorations.accounts.models import Role, Team, User
from restorations.engines.formats import EXTENSIONS
from restorations.jobs import services
from restorations.jobs.access import require_write
from restorations.jobs.models import Task
from restorations.jobs.operations import SPECS, Operation, OperationSpec, clean_options, spec_for
from restorations.jobs.states import State
from restorations.jobs.validation import CheckedImage, check_image

# A folder's files are taken only with these endings; a file named on its own is always checked.
IMAGE_SUFFIXES = frozenset(EXTENSIONS.values()) | {".jpeg", ".tiff"}
POLL_SECONDS = 0.5
BAR_WIDTH = 20

EXIT_FAILED = 1  # --wait: the last attempt of at least one photo failed
EXIT_REFUSED = 2  # nothing was created: unknown team or user, no permission, invalid input
EXIT_TIMED_OUT = 3  # --wait gave up; the tasks keep running


@dataclass(frozen=True)
class Photo:
    path: Path
    checked: CheckedImage


@dataclass
class Attempts:
    """One photo's task and every retry that followed it, oldest first."""

    path: Path
    tasks: list[Task]

    @property
    def last(self) -> Task:
        return self.tasks[-1]

    @property
    def finished(self) -> bool:
        return all(task.is_final for task in self.tasks)

    @property
    def failed(self) -> bool:
        return self.finished and self.last.state != State.COMPLETED


class Command(BaseCommand):
    help = "Upload photos (files or folders) for restoration; --wait follows them to the end."

    def add_arguments(self, parser):
        parser.add_argument(
            "paths",
            nargs="+",
            metavar="PATH",
            help="a photo, or a folder: its image files, not its subfolders",
        )
        uploader = parser.add_mutually_exclusive_group(required=True)
        uploader.add_argument("--team", metavar="SLUG", help="upload to this team as its owner")
        uploader.add_argument(
            "--user", metavar="USERNAME", help="upload to this user's personal team as the user"
        )
        parser.add_argument(
            "--operation",
            choices=list(SPECS),
            default=Operation.OLD_PHOTO.value,
            help="default: %(default)s",
        )
        parser.add_argument(
            "--option",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="an option of the operation; repeat for more",
        )
        parser.add_argument(
            "--wait",
            action="store_true",
            help="wait until every photo's last attempt has finished, automatic retries included",
        )
        parser.add_argument("--json", action="store_true", help="one JSON object per task")
        parser.add_argument(
            "--timeout",
            type=float,
            default=3600,
            metavar="SECONDS",
            help="with --wait, give up after this long (default %(default)g); tasks keep running",
        )

    def handle(self, *args, **options):
        team, user = find_uploader(options["team"], options["user"])
        operation = options["operation"]
        cleaned_options = check_options(operation, options["option"])
        photos = self.check_photos(options["paths"], spec_for(operation))
        created = create_tasks(team, user, photos, operation, cleaned_options)
        if not options["wait"]:
            self.report(load_attempts(created), as_json=options["json"], waited=False)
            return
        show_progress = self.stdout.isatty() and not options["json"]
        files = self.wait(created, options["timeout"], show_progress)
        self.report(files, as_json=options["json"], waited=True)
        raise_for_outcome(files, options["timeout"])

    def check_photos(self, paths: list[str], spec: OperationSpec) -> list[Photo]:
        """Every file checked before anything is stored; one bad file stops them all."""
        files, notes = expand_paths(paths)
        for note in notes:
            self.stderr.write(note)
        if not files:
            raise refused("No photos to upload: the folders hold no image files.")
        photos, bad = [], []
        for path in files:
            try:
                photos.append(Photo(path, check_file(path, spec)))
            except ValidationError as error:
                self.stderr.write(f"{path}: {' '.join(error.messages)}")
                bad.append(str(path))
        if bad:
            raise refused(
                f"Nothing was uploaded: {len(bad)} of {len(files)} files cannot be used "
                f"({', '.join(bad)})."
            )
        return photos

    def wait(
        self, created: list[tuple[Path, Task]], timeout: float, show_progress: bool
    ) -> list[Attempts]:
        """Read the tasks until all are final or the timeout passes; returns the last reading.

        It polls the database, so it follows workers in any process.
        """
        deadline = time.monotonic() + timeout
        while True:
            files = load_attempts(created)
            if show_progress:
                self.show_progress(files)
            if all(f.finished for f in files) or time.monotonic() >= deadline:
                if show_progress:
                    self.stdout.write("")  # leave the progress line
                return files
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def show_progress(self, files: list[Attempts]) -> None:
        done = sum(f.finished for f in files)
        failed = sum(f.failed for f in files)
        line = render_progress(done, failed, len(files))
        # \r rewrites the line in place; \x1b[K clears what a longer earlier line left behind.
        self.stdout.write(f"\r{line}\x1b[K", ending="")
        self.stdout.flush()

    def report(self, files: list[Attempts], *, as_json: bool, waited: bool) -> None:
        if as_json:
            for path, task in in_creation_order(files):
                self.stdout.write(json.dumps(task_record(task, path)))
        elif waited:
            for attempts in files:
                self.stdout.write("\n".join(summary_lines(attempts)))
        else:
            for attempts in files:
                self.stdout.write(f"{attempts.tasks[0].public_id}  {attempts.path}")


def refused(message: str) -> CommandError:
    return CommandError(message, returncode=EXIT_REFUSED)


def find_uploader(slug: str | None, username: str | None) -> tuple[Team, User]:
    team, user = team_and_owner(slug) if slug is not None else personal_team_of(username)
    require_uploader(team, user)
    return team, user


def team_and_owner(slug: str) -> tuple[Team, User]:
    team = Team.objects.filter(slug=slug).first()
    if team is None:
        raise refused(f"No team has the slug “{slug}”.")
    owner = (
        team.memberships.filter(role=Role.OWNER)
        .select_related("user")
        .order_by("created_at", "pk")
        .first()
    )
    if owner is None:
        raise refused(f"Team “{slug}” has no owner to upload as; use --user instead.")
    return team, owner.user


def personal_team_of(username: str) -> tuple[Team, User]:
    user = User.objects.filter(username=username).first()
    if user is None:
        raise refused(f"No user is named “{username}”.")
    try:
        return user.personal_team(), user
    except Team.DoesNotExist:
        raise refused(f"{username} has no personal team.") from None


def require_uploader(team: Team, user: User) -> None:
    try:
        require_write(team, user)
    except PermissionDenied:
        role = team.role_of(user) or "not a member"
        raise refused(f"{user} ({role}) may not upload photos to team “{team.slug}”.") from None


def parse_options(pairs: list[str]) -> dict[str, str]:
    options = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise refused(f"--option takes KEY=VALUE, not “{pair}”.")
        options[key.strip()] = value.strip()
    return options


def check_options(operation: str, pairs: list[str]) -> dict[str, str]:
    try:
        return clean_options(operation, parse_options(pairs))
    except ValidationError as error:
        message = " ".join(error.messages)
        if error.code != "unknown_option":  # that message lists the keys already
            message = f"{message} {option_keys(operation)}"
        raise refused(message) from None


def option_keys(operation: str) -> str:
    """The messages name options by their labels; a command line needs their keys."""
    spec = spec_for(operation)
    keys = [
        f"{option.name}={'|'.join(value for value, _label in option.choices)}"
        for option in spec.options
    ]
    return f"Options of {operation}: {', '.join(keys) or 'none'}."


def expand_paths(paths: list[str]) -> tuple[list[Path], list[str]]:
    """The files to check, each once, and notes about folder files that were skipped."""
    files, notes = [], []
    for given in map(Path, paths):
        if not given.is_dir():
            files.append(given)  # checked whatever its name or existence: it was asked for
            continue
        for entry in folder_files(given):
            if entry.suffix.lower() in IMAGE_SUFFIXES:
                files.append(entry)
            else:
                notes.append(f"{entry}: skipped, not an image file name.")
    return without_repeats(files), notes


def folder_files(folder: Path) -> list[Path]:
    try:
        entries = list(folder.iterdir())
    except OSError as error:
        raise refused(f"{folder}: the folder cannot be read ({error.strerror}).") from None
    visible = (p for p in entries if p.is_file() and not p.name.startswith("."))
    return sorted(visible, key=lambda p: p.name)


def without_repeats(files: list[Path]) -> list[Path]:
    """A file named on its own and through its folder is uploaded (and charged) once."""
    seen, kept = set(), []
    for path in files:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            kept.append(path)
    return kept


def check_file(path: Path, spec: OperationSpec) -> CheckedImage:
    try:
        with path.open("rb") as handle:
            return check_image(File(handle), spec)
    except OSError as error:
        raise ValidationError(f"The file cannot be read ({error.strerror or error}).") from None


def create_tasks(
    team: Team, user: User, photos: list[Photo], operation: str, options: dict[str, str]
) -> list[tuple[Path, Task]]:
    """All tasks or none, in one new batch, through the service the upload page uses."""

    def opened():
        for photo in photos:
            with photo.path.open("rb") as handle:
                yield File(handle), photo.path.name, photo.checked

    tasks = services.create_tasks(
        team=team, user=user, items=opened(), operation=operation, options=options
    )
    return [(photo.path, task) for photo, task in zip(photos, tasks, strict=True)]


def load_attempts(created: list[tuple[Path, Task]]) -> list[Attempts]:
    """Each created task with its retries, read fresh from the database.

    Parents are read before their retries, and a transient failure is committed together with
    its automatic retry, so a parent read as failed never hides a retry.
    """
    attempts_of = {task.pk: Attempts(path, []) for path, task in created}
    files = list(attempts_of.values())
    rows = Task.objects.select_related("upload", "retry_of")
    level = list(rows.filter(pk__in=list(attempts_of)))
    while level:
        for task in level:
            # A created task is already keyed; a retry joins its parent's photo.
            attempts_of.setdefault(task.pk, attempts_of.get(task.retry_of_id)).tasks.append(task)
        level = list(rows.filter(retry_of__in=[task.pk for task in level]))
    for attempts in files:
        attempts.tasks.sort(key=lambda task: (task.created_at, task.pk))
    return files


def raise_for_outcome(files: list[Attempts], timeout: float) -> None:
    unfinished = [f for f in files if not f.finished]
    if unfinished:
        names = ", ".join(
            f"{f.path} ({f.last.public_id}, {f.last.state_info.label})" for f in unfinished
        )
        raise CommandError(
            f"Gave up waiting after {timeout:g} s; still in progress (they carry on): {names}.",
            returncode=EXIT_TIMED_OUT,
        )
    failed = [f for f in files if f.failed]
    if failed:
        raise CommandError(f"{len(failed)} of {len(files)} photos failed.", returncode=EXIT_FAILED)


def render_progress(done: int, failed: int, total: int, width: int = BAR_WIDTH) -> str:
    """`[########............] 3/7 done, 1 failed`: done counts failed photos too."""
    filled = width * done // total if total else width
    line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} done"
    return f"{line}, {failed} failed" if failed else line


def in_creation_order(files: list[Attempts]) -> list[tuple[Path, Task]]:
    pairs = [(f.path, task) for f in files for task in f.tasks]
    return sorted(pairs, key=lambda pair: (pair[1].created_at, pair[1].pk))


def task_record(task: Task, path: Path) -> dict:
    info = task.state_info
    return {
        "id": str(task.public_id),
        "file": task.upload.original_name,
        "path": str(path),
        "operation": task.operation,
        "engine": task.engine,
        "state": task.state,
        "state_label": info.label,
        "reason": info.reason,
        "advice": info.advice,
        "progress": task.progress,
        "remote_task_id": task.remote_task_id or None,
        "result_sha256": task.result_sha256 or None,
        "result_bytes": task.result_bytes,
        "result_width": task.result_width,
        "result_height": task.result_height,
        "poll_count": task.poll_count,
        "retry_of": str(task.retry_of.public_id) if task.retry_of else None,
    }


def summary_lines(attempts: Attempts) -> list[str]:
    task, retries = attempts.last, len(attempts.tasks) - 1
    info = task.state_info
    line = f"{attempts.path}: {info.label} ({task.public_id})"
    if retries:
        line += f", after {retries} {'retry' if retries == 1 else 'retries'}"
    if not info.is_failure:
        return [line]
    return [line, f"  {info.reason}", f"  {info.advice}"]
