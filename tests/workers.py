"""Real Celery worker processes for integration tests, on a private queue and the test database."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import quote

from django.conf import settings
from django.db import connection


def database_env(**extra: str) -> dict[str, str]:
    """This process's environment, pointed at the current (test) database by DATABASE_URL."""
    db = connection.settings_dict
    host = quote(db["HOST"], safe="") if db["HOST"].startswith("/") else db["HOST"]
    url = f"postgres://{quote(db['USER'])}@{host}:{db['PORT']}/{db['NAME']}"
    return {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_SETTINGS_MODULE": "contextkb.settings",
        **extra,
    }


def start_celery_worker(queue: str, env: dict[str, str]) -> subprocess.Popen:
    """`celery -A contextkb worker` consuming only `queue`, in one process (solo pool)."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "contextkb",
            "worker",
            "-Q",
            queue,
            "-P",
            "solo",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
            "-l",
            "WARNING",
        ],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
