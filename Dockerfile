# contextkb: one image for web, MCP (ASGI), Celery worker and beat. See docs/operations.md.
# The Python the test suite runs on (Django 6 needs 3.12 or newer).
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CONTEXTKB_VAR_DIR=/app/var \
    DJANGO_STATIC_ROOT=/app/staticfiles

WORKDIR /app

# Dependencies first (cached while only the code changes). pyproject.toml lists no packages to
# install, so this installs the dependencies only; the code is copied next.
COPY pyproject.toml README.md ./
RUN pip install .

COPY . .

# Static files are collected into the image (whitenoise serves them with far-future headers).
# DATABASE_URL only has to parse here: collectstatic never connects.
RUN DATABASE_URL=postgres://build@localhost/build DJANGO_SECRET_KEY=build-only \
        python manage.py collectstatic --no-input -v0 \
    && useradd --system --uid 1000 --home-dir /app contextkb \
    && mkdir -p /app/var \
    && chown -R contextkb /app/var

USER contextkb
EXPOSE 8000 8001

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1

# Web UI and REST API (WSGI, threads); contextkb writes its own JSON access log. The compose
# file adds the MCP (ASGI), worker and beat.
CMD ["gunicorn", "contextkb.wsgi:application", "--bind", "0.0.0.0:8000", \
     "--workers", "3", "--threads", "4", "--timeout", "60", "--graceful-timeout", "20", \
     "--keep-alive", "75"]
