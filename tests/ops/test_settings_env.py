"""Settings come from the environment: empty lines copied from .env.example mean "default"."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from apps.core.env import env_bool, env_choice, env_int, env_list, env_secret, env_str

ROOT = Path(__file__).resolve().parents[2]


def env_example() -> dict[str, str]:
    """The variables of .env.example exactly as an env file (systemd, compose) would pass them."""
    values = {}
    for line in (ROOT / ".env.example").read_text("utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def test_env_example_lists_names_only_once_and_every_one_is_read_by_settings():
    names = list(env_example())
    assert len(names) == len(set(names))
    settings_text = (ROOT / "contextkb" / "settings.py").read_text("utf-8")
    # The launcher of `make run` / `make serve` reads its own (ports, process counts).
    settings_text += (ROOT / "apps" / "core" / "launcher.py").read_text("utf-8")
    # CONTEXTKB_CHROMIUM is read by the browser tests.
    elsewhere = {"CONTEXTKB_CHROMIUM"}
    assert [n for n in names if f'"{n}"' not in settings_text and n not in elsewhere] == []


def test_empty_values_mean_the_default(monkeypatch):
    for name in ("X_STR", "X_BOOL", "X_INT", "X_LIST", "X_CHOICE", "X_SECRET", "X_SECRET_FILE"):
        monkeypatch.setenv(name, "  ")
    assert env_str("X_STR", "fallback") == "fallback"
    assert env_bool("X_BOOL", True) is True
    assert env_int("X_INT", 7) == 7
    assert env_list("X_LIST", ["a"]) == ["a"]
    assert env_choice("X_CHOICE", ["json", "text"], "json") == "json"
    assert env_secret("X_SECRET") is None


def test_set_values_are_parsed_and_bad_ones_fail_loudly(monkeypatch, tmp_path):
    monkeypatch.setenv("X_BOOL", "off")
    assert env_bool("X_BOOL", True) is False
    monkeypatch.setenv("X_LIST", " a, ,b ")
    assert env_list("X_LIST") == ["a", "b"]
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t\n")
    monkeypatch.setenv("X_SECRET_FILE", str(secret))
    assert env_secret("X_SECRET") == "s3cr3t"
    for name, value, call in [
        ("X_BOOL", "maybe", lambda: env_bool("X_BOOL")),
        ("X_INT", "ten", lambda: env_int("X_INT", 1)),
        ("X_INT", "0", lambda: env_int("X_INT", 1, minimum=1)),
        ("X_CHOICE", "xml", lambda: env_choice("X_CHOICE", ["json"], "json")),
        ("X_SECRET_FILE", str(tmp_path / "missing"), lambda: env_secret("X_SECRET")),
    ]:
        monkeypatch.setenv(name, value)
        with pytest.raises(ImproperlyConfigured, match=name):
            call()


def test_env_example_copied_as_is_gives_the_documented_defaults():
    probe = (
        "import json; from django.conf import settings as s; print('SETTINGS=' + json.dumps({"
        "'var': str(s.VAR_DIR), 'static': str(s.STATIC_ROOT), 'broker': s.CELERY_BROKER_URL, "
        "'redirect': s.SECURE_SSL_REDIRECT, 'hsts': s.SECURE_HSTS_SECONDS, "
        "'log': s.LOG_FORMAT, 'csp': bool(s.SECURE_CSP), 'lease': s.REMINDERS_SEND_LEASE_SECONDS}))"
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")},
        **env_example(),
        "CONTEXTKB_HTTPS": "true",
        "DJANGO_SECRET_KEY": "x" * 60,
    }
    for name in ("DATABASE_URL", "DATABASE_TEST_NAME", "CONTEXTKB_DATABASE_NAME"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    line = next(x for x in done.stdout.splitlines() if x.startswith("SETTINGS="))
    found = json.loads(line.removeprefix("SETTINGS="))
    assert found == {
        "var": str(ROOT / "var"),  # not the current folder
        "static": str(ROOT / "var" / "staticfiles"),
        "broker": "filesystem://",  # not Celery's amqp://localhost
        "redirect": True,  # follows CONTEXTKB_HTTPS
        "hsts": 31_536_000,
        "log": "json",
        "csp": True,  # enforced, not report-only
        "lease": 360,  # CELERY_TASK_TIME_LIMIT (300) + 60
    }
