"""Production settings: everything from the environment, no insecure defaults.

The process refuses to start (ImproperlyConfigured) unless DJANGO_SECRET_KEY,
DJANGO_ALLOWED_HOSTS, DATABASE_URL and CELERY_BROKER_URL are set. TLS is expected to end at a
reverse proxy that sets X-Forwarded-Proto. See docs/deployment.md.
"""

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import DATABASES, LOGGING, STORAGES, env

DEBUG = False
SECRET_KEY = env.str("DJANGO_SECRET_KEY")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must name at least one host")

# base.py falls back to SQLite and a file-system broker for the embedded setup; production must
# name its database and broker. base.py has already parsed both from the same variables.
env.db("DATABASE_URL")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL")
# Keep database connections open between requests; check them before reuse.
DATABASES = {
    "default": {
        **DATABASES["default"],
        "CONN_MAX_AGE": 60,
        "CONN_HEALTH_CHECKS": True,
    }
}

# --- HTTPS ----------------------------------------------------------------------------------
# The proxy in front of gunicorn sets X-Forwarded-Proto (replacing any value a client sent), so
# gunicorn's port must never be reachable from the internet directly.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
# One year, the minimum the browsers' preload lists accept. Browsers remember it for that long:
# start with a small value (e.g. 3600) until HTTPS is known to work on the host.
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Static files ---------------------------------------------------------------------------
# Collected at image build time; whitenoise serves them with hashed names and compression.
STORAGES = {
    **STORAGES,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Logging --------------------------------------------------------------------------------
LOGGING = {
    **LOGGING,
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "stream": "ext://sys.stdout",
        }
    },
}
