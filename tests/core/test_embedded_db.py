"""The embedded PostgreSQL: starts offline, is shared by concurrent starters, has pgvector."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from apps.core import embedded_db
from apps.core.db import require_pgvector


@pytest.fixture
def data_dir(tmp_path):
    path = tmp_path / "pgdata"
    yield path
    embedded_db.stop(path)


def _start_in_subprocess(data_dir) -> str:
    code = (
        "import sys; from pathlib import Path; from apps.core import embedded_db; "
        "print(embedded_db.ensure_running(Path(sys.argv[1])).url())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_two_processes_starting_at_once_share_one_server_with_pgvector(data_dir):
    with ThreadPoolExecutor(max_workers=2) as pool:
        urls = list(pool.map(lambda _: _start_in_subprocess(data_dir), range(2)))
    assert urls[0] == urls[1]
    assert embedded_db.is_running(data_dir)
    with psycopg.connect(urls[0], autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE TABLE items (id int PRIMARY KEY, embedding vector(3))")
        conn.execute("CREATE INDEX ON items USING hnsw (embedding vector_cosine_ops)")
        conn.execute("INSERT INTO items VALUES (1, '[1,0,0]'), (2, '[0,1,0]'), (3, '[0.9,0.1,0]')")
        rows = conn.execute(
            "SELECT id FROM items ORDER BY embedding <=> '[1,0,0]' LIMIT 2"
        ).fetchall()
    assert [r[0] for r in rows] == [1, 3]


def test_start_is_idempotent_and_stop_is_clean(data_dir):
    first = embedded_db.ensure_running(data_dir)
    again = embedded_db.ensure_running(data_dir)
    assert first == again
    assert embedded_db.stop(data_dir) is True
    assert not embedded_db.is_running(data_dir)
    assert embedded_db.stop(data_dir) is False
    # Data survives a restart.
    restarted = embedded_db.ensure_running(data_dir)
    with psycopg.connect(restarted.url(), autocommit=True) as conn:
        assert conn.execute("SELECT current_database()").fetchone()[0] == "contextkb"


def test_cli_reports_status_with_its_exit_code(data_dir):
    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "apps.core.embedded_db", *args, "--data-dir", str(data_dir)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert cli("status").returncode == 1
    started = cli("start")
    assert started.returncode == 0 and "running at postgresql://" in started.stdout
    assert cli("status").returncode == 0
    assert cli("stop").stdout.strip() == "stopped"


@pytest.mark.django_db
def test_the_app_database_has_a_recent_pgvector():
    major, minor = (int(x) for x in require_pgvector().split(".")[:2])
    assert (major, minor) >= (0, 7)
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        assert cursor.fetchone() is not None


def test_a_server_without_pgvector_fails_with_a_clear_message(django_db_blocker):
    """Debian's PostgreSQL on the build machines has no pgvector: the exact case to refuse."""
    try:
        conn = psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3)
    except psycopg.OperationalError:
        pytest.skip("no PostgreSQL without pgvector on 127.0.0.1:5432 to check against")
    conn.close()
    from django.db.backends.postgresql.base import DatabaseWrapper

    wrapper = DatabaseWrapper(
        {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "postgres",
            "USER": "postgres",
            "HOST": "127.0.0.1",
            "PORT": "5432",
            "PASSWORD": "",
            "OPTIONS": {},
            "TIME_ZONE": None,
            "CONN_MAX_AGE": 0,
            "CONN_HEALTH_CHECKS": False,
            "AUTOCOMMIT": True,
            "ATOMIC_REQUESTS": False,
            "TEST": {},
        }
    )
    try:
        with (
            django_db_blocker.unblock(),
            pytest.raises(ImproperlyConfigured, match="no pgvector extension"),
        ):
            require_pgvector(wrapper)
    finally:
        wrapper.close()


def test_manage_py_refuses_a_server_without_pgvector_with_one_clear_line(tmp_path):
    """What an operator sees: `migrate` against DATABASE_URL without pgvector exits 1 with the
    reason and no traceback, and creates no table there."""
    url = "postgresql://postgres@127.0.0.1:5432/postgres"
    try:
        psycopg.connect(url, connect_timeout=3).close()
    except psycopg.OperationalError:
        pytest.skip("no PostgreSQL without pgvector on 127.0.0.1:5432 to check against")
    scratch = f"ckb_nopgvector_{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{scratch}"')
        admin.execute(f'CREATE DATABASE "{scratch}"')
    try:
        env = {**os.environ, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:5432/{scratch}"}
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--no-input"],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 1
        assert "contextkb: configuration error:" in done.stderr
        assert "no pgvector extension" in done.stderr
        assert "Traceback" not in done.stderr
        with psycopg.connect(env["DATABASE_URL"]) as conn:
            tables = conn.execute(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename LIKE 'records_%'"
            ).fetchone()[0]
        assert tables == 0
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
