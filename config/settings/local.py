"""The embedded default used by `make run`: debug on, a development secret, localhost only."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="local-development-only-not-a-secret")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405 (whitenoise expects it to exist)
