"""Settings shared by every environment. Values come from the environment (django-environ).

The defaults here are the embedded setup: SQLite, a file-system Celery broker, local files and
the local engine, so the product runs on a fresh machine with nothing else installed.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = environ.Env()

# Everything the embedded setup writes (database, broker messages, uploaded files).
VAR_DIR = Path(env.str("DESK_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "restorations.accounts",
    "restorations.jobs",
    "restorations.engines",
    "restorations.picwish",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "restorations.accounts.context_processors.current_team",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # WAL lets the web, worker and beat processes read while one writes; IMMEDIATE takes the
    # write lock at BEGIN so two writers queue on the busy timeout instead of deadlocking.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "jobs:task_list"
LOGOUT_REDIRECT_URL = "home"

# --- Email -----------------------------------------------------------------------------------
# Password-reset mails. The default prints them to the web process's output (consolemail://);
# a deployment names its SMTP server, e.g. smtp+tls://user:password@smtp.example.com:587.
# Empty counts as unset here and below: docker-compose.yml passes the variables through unset.
_email = env.email_url_config(env.str("EMAIL_URL", default="") or "consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or 25
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = 10  # a slow mail server fails the reset page in seconds rather than hanging it
DEFAULT_FROM_EMAIL = (
    env.str("DJANGO_DEFAULT_FROM_EMAIL", default="") or "Restoration Desk <desk@localhost>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Files ----------------------------------------------------------------------------------
STATIC_URL = "static/"
# Not under VAR_DIR: the production image collects static files at build time.
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = VAR_DIR / "media"
# Originals and results are private: no URL serves this prefix; downloads go through
# access-checked views (restorations/jobs/views/files.py).
MEDIA_URL = "/private-media/"

AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    _file_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default=None),
            "region_name": env.str("AWS_S3_REGION_NAME", default=None),
            "access_key": env.str("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default=None),
            "default_acl": None,
            "file_overwrite": False,
            "querystring_auth": True,
            "querystring_expire": env.int("AWS_QUERYSTRING_EXPIRE", default=300),
            # A file read from S3 is downloaded whole first; past this many bytes it waits on
            # disk instead of in memory (django-storages keeps everything in memory by default).
            "max_memory_size": env.int("AWS_S3_MAX_MEMORY_SIZE", default=2 * 1024 * 1024),
        },
    }
else:
    _file_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _file_storage,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Uploads larger than this go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
# The largest photo any operation accepts is 30 MB; leave room for the multipart envelope.
DATA_UPLOAD_MAX_MEMORY_SIZE = 32 * 1024 * 1024

# --- Engines --------------------------------------------------------------------------------
# A site-wide PicWish key; a team's own key takes precedence. With neither, the local engine.
PICWISH_API_KEY = env.str("PICWISH_API_KEY", default="")
PICWISH_BASE_URL = env.str("PICWISH_BASE_URL", default="https://techhk.aoscdn.com")
PICWISH_QPS = env.float("PICWISH_QPS", default=2.0)
# Poll every PicWish task at this fixed interval (seconds) instead of planning each poll.
PICWISH_POLL_INTERVAL = env.float("PICWISH_POLL_INTERVAL", default=None)
# The first wait after a 429, a server error or a lost answer; it doubles with each one in a row.
PICWISH_BACKOFF_SECONDS = env.float("PICWISH_BACKOFF_SECONDS", default=1.0)
# A claim on a task (to send, poll or fetch it) runs out after this, e.g. when a worker dies.
PICWISH_LEASE_SECONDS = env.float("PICWISH_LEASE_SECONDS", default=60.0)
# A task PicWish has not finished this long after it was sent ends as "no answer in time".
PICWISH_TASK_DEADLINE = env.float("PICWISH_TASK_DEADLINE", default=1200.0)
# After PicWish refused a team's key (401), its waiting tasks try it again this often.
PICWISH_PAUSE_PROBE_SECONDS = env.float("PICWISH_PAUSE_PROBE_SECONDS", default=60.0)
# Tasks PicWish is assumed to process at once for an account, until it has been measured.
PICWISH_ASSUMED_CONCURRENCY = env.int("PICWISH_ASSUMED_CONCURRENCY", default=4)
# The Redis that holds each PicWish key's request schedule, shared by every process on every
# machine. Empty: the broker when it is Redis, else a locked file per key in VAR_DIR/ratelimit
# (one machine only). restorations/engines/ratelimit.py: limiter_for_settings().
PICWISH_RATE_LIMIT_URL = env.str("PICWISH_RATE_LIMIT_URL", default="")
if PICWISH_RATE_LIMIT_URL and not PICWISH_RATE_LIMIT_URL.startswith(("redis://", "rediss://")):
    raise ImproperlyConfigured(
        "PICWISH_RATE_LIMIT_URL must be a Redis URL (redis:// or rediss://) or empty"
    )
# Encrypts team PicWish keys at rest. Falls back to a key derived from SECRET_KEY.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = VAR_DIR / "broker"
    for _folder in ("messages", "control", "processed"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "messages"),
        "data_folder_out": str(_broker_dir / "messages"),
        "control_folder": str(_broker_dir / "control"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # How often an idle consumer looks into the folders (kombu's default is 1 s). The worker
        # takes one message per look while its prefetch is full, so at 1 s it fell behind beat's
        # four dispatcher runs a second and a new photo queued behind them for about 5 s. At
        # 0.1 s a photo starts within a few tenths of a second; an idle worker lists three small
        # folders ten times a second.
        "polling_interval": 0.1,
    }
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # A message whose worker died comes back after this; above the 300 s task time limit.
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 600}
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True  # a task whose worker died is delivered again; tasks are idempotent
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_TIME_LIMIT = 300
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "desk"
# A worker started without -Q consumes every queue listed here.
CELERY_TASK_QUEUES = [
    Queue("desk", Exchange("desk"), routing_key="desk"),
    Queue("local_engine", Exchange("local_engine"), routing_key="local_engine"),
]
CELERY_TASK_ROUTES = {"engines.*": {"queue": "local_engine"}}  # names: restorations.jobs.queue
CELERY_BEAT_SCHEDULE = {
    "dispatch-due-tasks": {
        "task": "jobs.dispatch_due",
        "schedule": env.float("DESK_DISPATCH_INTERVAL", default=0.25),
        "options": {"expires": 5},
    },
    # Deletes the files of photos past their team's retention period (restorations.jobs.retention).
    "delete-expired-files": {
        "task": "jobs.delete_expired_files",
        "schedule": env.float("DESK_RETENTION_INTERVAL", default=3600.0),
        "options": {"expires": 600},
    },
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # One line per task received and finished drowns everything else (beat's dispatcher
        # runs every second); failures still log at ERROR.
        "celery.app.trace": {"level": "WARNING"},
        "celery.worker.strategy": {"level": "WARNING"},
    },
}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False  # Celery logs through LOGGING above
