"""Real Celery worker processes for integration tests, on a private queue and the test database."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
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


@contextlib.contextmanager
def celery_worker(**env: str) -> Iterator[str]:
    """A worker (as `start_celery_worker`) on a fresh private queue, with `env` on top of the
    test database's; yields the queue, stops the worker afterwards and prints the end of its
    output (shown when the test fails)."""
    queue = f"ckbtest-{uuid.uuid4().hex[:12]}"
    proc = start_celery_worker(queue, database_env(CELERY_TASK_DEFAULT_QUEUE=queue, **env))
    try:
        yield queue
    finally:
        proc.terminate()
        try:
            output, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        print(output.decode(errors="replace")[-5000:])


def wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    """Poll `predicate` until it is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    raise AssertionError(f"Timed out waiting for {what}")
