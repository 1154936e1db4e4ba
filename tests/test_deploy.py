"""The production configuration: settings that refuse to start without their secrets, pass
`manage.py check --deploy`, and a docker-compose.yml that wires every process to them.

Everything runs in subprocesses with a controlled environment, so neither the test settings nor
the variables of the machine running the tests can make a test pass.
"""

import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
PRODUCTION = "config.settings.production"
APP_SERVICES = ("web", "worker", "beat", "migrate")
REQUIRED_SETTINGS_VARIABLES = (
    "DJANGO_SECRET_KEY",
    "DJANGO_ALLOWED_HOSTS",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
)
# Variables read by the settings or by docker-compose.yml; the host's values are dropped.
CONTROLLED_PREFIXES = (
    "DJANGO_",
    "DESK_",
    "DATABASE_",
    "CELERY_",
    "PICWISH_",
    "AWS_",
    "POSTGRES_",
    "COMPOSE_",
    "FIELD_ENCRYPTION_",
    "WEB_CONCURRENCY",
)


def clean_environ(**values: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(CONTROLLED_PREFIXES)}
    environ.update(values)
    return environ


def production_environ(tmp_path: Path, **overrides: str | None) -> dict[str, str]:
    """A complete production environment; an override of None removes that variable."""
    values = {
        "DJANGO_SETTINGS_MODULE": PRODUCTION,
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "desk.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "DESK_VAR_DIR": str(tmp_path / "var"),
    }
    values.update(overrides)
    return clean_environ(**{k: v for k, v in values.items() if v is not None})


def run(args: list[str], environ: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=180, check=False
    )


def run_python(code: str, environ: dict[str, str]) -> subprocess.CompletedProcess:
    return run([sys.executable, "-c", code], environ)


def run_manage(environ: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, str(ROOT / "manage.py"), *args], environ)


def output_of(result: subprocess.CompletedProcess) -> str:
    return (
        f"exit code {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


# --- Settings -------------------------------------------------------------------------------

LOAD_SETTINGS = """
import json, django
django.setup()
from django.conf import settings
print(json.dumps({
    "DEBUG": settings.DEBUG,
    "staticfiles": settings.STORAGES["staticfiles"]["BACKEND"],
    "default_storage": settings.STORAGES["default"]["BACKEND"],
    "log_stream": settings.LOGGING["handlers"]["console"].get("stream"),
    "broker": settings.CELERY_BROKER_URL,
}))
"""


def test_production_settings_load_with_the_required_variables(tmp_path):
    result = run_python(LOAD_SETTINGS, production_environ(tmp_path))

    assert result.returncode == 0, output_of(result)
    loaded = json.loads(result.stdout)
    assert loaded["DEBUG"] is False
    assert loaded["staticfiles"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert loaded["default_storage"] == "django.core.files.storage.FileSystemStorage"
    assert loaded["log_stream"] == "ext://sys.stdout"
    assert loaded["broker"] == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize("name", REQUIRED_SETTINGS_VARIABLES)
def test_production_settings_refuse_to_load_without(tmp_path, name):
    result = run_python(LOAD_SETTINGS, production_environ(tmp_path, **{name: None}))

    assert result.returncode != 0, output_of(result)
    assert "ImproperlyConfigured" in result.stderr, output_of(result)
    assert name in result.stderr, output_of(result)


def test_production_settings_refuse_an_empty_host_list(tmp_path):
    result = run_python(LOAD_SETTINGS, production_environ(tmp_path, DJANGO_ALLOWED_HOSTS=""))

    assert result.returncode != 0, output_of(result)
    assert "DJANGO_ALLOWED_HOSTS" in result.stderr, output_of(result)


def test_check_deploy_passes(tmp_path):
    result = run_manage(
        production_environ(tmp_path), "check", "--deploy", "--fail-level", "WARNING"
    )

    assert result.returncode == 0, output_of(result)


def test_check_deploy_reports_a_disabled_https_redirect(tmp_path):
    """The check above sees the real settings: turning a protection off makes it fail."""
    environ = production_environ(tmp_path, DJANGO_SECURE_SSL_REDIRECT="false")

    result = run_manage(environ, "check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0, output_of(result)
    assert "security.W008" in result.stdout + result.stderr, output_of(result)


# --- docker-compose.yml ---------------------------------------------------------------------


def compose_command(*, json_output: bool = False) -> list[str]:
    """`docker compose` (v2); the older `docker-compose` does for checks that need no JSON."""
    docker = shutil.which("docker")
    if docker is not None:
        probe = run([docker, "compose", "version"], clean_environ())
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is not None and not json_output:
        return [legacy]
    pytest.skip("docker compose is not installed")


def run_compose(
    command: list[str], tmp_path: Path, *args: str, **variables: str
) -> subprocess.CompletedProcess:
    # An empty env file, so that a .env next to docker-compose.yml cannot supply the secrets.
    env_file = tmp_path / "empty.env"
    env_file.write_text("")
    arguments = [*command, "--env-file", str(env_file), "--file", str(COMPOSE_FILE), *args]
    return run(arguments, clean_environ(**variables))


COMPOSE_SECRETS = {"DJANGO_SECRET_KEY": "compose-test-secret", "POSTGRES_PASSWORD": "compose-test"}


@pytest.mark.parametrize("profile_args", [[], ["--profile", "s3"]], ids=["default", "s3"])
def test_compose_file_is_valid(tmp_path, profile_args):
    command = compose_command()

    result = run_compose(command, tmp_path, *profile_args, "config", "-q", **COMPOSE_SECRETS)

    assert result.returncode == 0, output_of(result)


@pytest.mark.parametrize("name", sorted(COMPOSE_SECRETS))
def test_compose_requires_secret(tmp_path, name):
    command = compose_command()
    variables = {k: v for k, v in COMPOSE_SECRETS.items() if k != name}

    result = run_compose(command, tmp_path, "config", "-q", **variables)

    assert result.returncode != 0, output_of(result)
    assert name in result.stderr, output_of(result)


def compose_services(tmp_path: Path, *args: str) -> dict:
    command = compose_command(json_output=True)
    result = run_compose(command, tmp_path, *args, "config", "--format", "json", **COMPOSE_SECRETS)
    assert result.returncode == 0, output_of(result)
    return json.loads(result.stdout)["services"]


def command_args(service: dict) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else list(command)


def test_compose_services(tmp_path):
    services = compose_services(tmp_path)

    assert {"web", "worker", "beat", "migrate", "postgres", "redis"} <= services.keys()
    for name in APP_SERVICES:
        environment = services[name]["environment"]
        assert environment["DJANGO_SETTINGS_MODULE"] == PRODUCTION, name
        assert environment["DJANGO_SECRET_KEY"] == COMPOSE_SECRETS["DJANGO_SECRET_KEY"], name
        assert "@postgres:5432/" in environment["DATABASE_URL"], name
        assert environment["CELERY_BROKER_URL"] == "redis://redis:6379/0", name


def test_compose_worker_serves_every_queue(tmp_path):
    worker = command_args(compose_services(tmp_path)["worker"])

    assert worker[:4] == ["celery", "-A", "config", "worker"]
    assert not [arg for arg in worker if arg.startswith(("-Q", "--queues"))], worker


def test_compose_start_order(tmp_path):
    services = compose_services(tmp_path)

    assert command_args(services["migrate"])[-3:] == ["manage.py", "migrate", "--no-input"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("web", "worker", "beat"):
        depends_on = services[name]["depends_on"]
        assert depends_on["migrate"]["condition"] == "service_completed_successfully", name
        assert depends_on["redis"]["condition"] == "service_healthy", name


def test_compose_minio_only_in_the_s3_profile(tmp_path):
    services = compose_services(tmp_path, "--profile", "s3")

    assert services["minio"]["image"].startswith("minio/minio")
    assert services["minio-create-bucket"]["image"].startswith("minio/mc")
    assert services["minio"]["profiles"] == ["s3"]
    assert services["minio-create-bucket"]["profiles"] == ["s3"]
    for name in ("postgres", "redis", *APP_SERVICES):
        assert not services[name].get("profiles"), name
