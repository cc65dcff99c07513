"""docker-compose.yml and the Dockerfile cannot run here (no container engine), so they are read
against the code: every variable they set is one the settings read, every command exists, and
every service has a health check that fits what it runs."""

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = (ROOT / "contextkb" / "settings.py").read_text("utf-8")
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text("utf-8"))
DOCKERFILE = (ROOT / "Dockerfile").read_text("utf-8")
APP_SERVICES = ["migrate", "web", "mcp", "worker", "beat"]


def test_every_variable_compose_and_the_image_set_is_read_by_the_settings():
    names = set()
    for name in APP_SERVICES:
        names |= set(COMPOSE["services"][name]["environment"])
    names |= set(re.findall(r"^\s+([A-Z_]+)=", DOCKERFILE, re.MULTILINE))
    names -= {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR",
              "PIP_DISABLE_PIP_VERSION_CHECK"}  # fmt: skip
    assert names, "nothing parsed"
    assert sorted(n for n in names if f'"{n}"' not in SETTINGS) == []


def test_the_database_and_broker_point_at_the_compose_services():
    env = COMPOSE["services"]["web"]["environment"]
    assert env["DATABASE_URL"].startswith("postgres://contextkb:")
    assert env["DATABASE_URL"].endswith("@db:5432/contextkb")
    assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    assert COMPOSE["services"]["db"]["image"].startswith("pgvector/pgvector:")


def test_each_service_runs_an_entry_point_that_exists():
    commands = {name: COMPOSE["services"][name].get("command") for name in APP_SERVICES}
    assert commands["migrate"] == ["python", "manage.py", "migrate", "--no-input"]
    assert commands["worker"][:4] == ["celery", "-A", "contextkb", "worker"]
    assert commands["beat"][:4] == ["celery", "-A", "contextkb", "beat"]
    assert commands["mcp"][:2] == ["uvicorn", "contextkb.asgi:application"]
    assert commands["web"] is None  # the image's CMD: gunicorn contextkb.wsgi:application
    assert '"gunicorn", "contextkb.wsgi:application"' in DOCKERFILE
    # The commands' options are real ones (a typo makes the container exit at once).
    for argv, help_argv in [
        (commands["mcp"], ["uvicorn", "--help"]),
        (commands["worker"], ["celery", "-A", "contextkb", "worker", "--help"]),
        (commands["beat"], ["celery", "-A", "contextkb", "beat", "--help"]),
    ]:
        helptext = subprocess.run(
            [sys.executable, "-m", *help_argv], cwd=ROOT, capture_output=True, text=True,
            timeout=120,
        ).stdout  # fmt: skip
        options = [a.split("=")[0] for a in argv if a.startswith("--")]
        assert options and [o for o in options if o not in helptext] == [], argv


def test_services_without_the_web_port_do_not_inherit_its_health_check():
    assert "HEALTHCHECK" in DOCKERFILE and "127.0.0.1:8000/healthz" in DOCKERFILE
    services = COMPOSE["services"]
    assert "8000/readyz" in str(services["web"]["healthcheck"]["test"])
    assert "8001/healthz" in str(services["mcp"]["healthcheck"]["test"])
    assert "inspect ping" in str(services["worker"]["healthcheck"]["test"])
    assert services["beat"]["healthcheck"] == {"disable": True}
    assert services["migrate"]["healthcheck"] == {"disable": True}
