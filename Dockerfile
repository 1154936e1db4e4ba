# One image for every process of Restoration Desk: web (the default command), Celery worker,
# Celery beat and the one-shot migrate. docker-compose.yml picks the command per service.
FROM python:3.11-slim

# PYTHONPATH: the code runs from /app (templates/ and static/ are found relative to it), also
# under celery, which puts the working directory on sys.path only while it loads the app.
# WEB_CONCURRENCY: gunicorn's default number of worker processes.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=config.settings.production \
    WEB_CONCURRENCY=3

# opencv-python-headless needs no X or OpenGL libraries, but loads GLib.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home desk

WORKDIR /app

# Dependencies first, so that a code change does not reinstall them. With only pyproject.toml
# present, this installs the declared dependencies (no dev extras); the code is copied next.
COPY pyproject.toml ./
RUN pip install . && rm -rf build *.egg-info

COPY . .

# collectstatic imports the production settings, which refuse to load without these variables.
# The values exist only for this one command; they are not stored in the image.
RUN DJANGO_SECRET_KEY=build-only-not-a-secret-never-used-at-runtime \
    DJANGO_ALLOWED_HOSTS=localhost \
    DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    CELERY_BROKER_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --no-input \
    && mkdir -p var/media \
    && chown desk:desk var var/media

USER desk

EXPOSE 8000
# gthread: see the web service in docker-compose.yml (long ZIP downloads outlive a sync worker).
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-", \
     "--worker-class", "gthread", "--threads", "4"]
