"""A task carries the database it was enqueued for; a worker of another database refuses it.

The scenario of issue 19: a `manage.py` pointed at database A (another DATABASE_URL) shares the
broker with the worker of database B. Here the test process is A (the test database) and puts a
task straight into B's queue, as a shared broker would; B's real Celery worker must not run it.
"""

import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from django.db import connection

from apps.core.task_context import DATABASE_HEADER, database_identity, local_broker_folders
from apps.retrieval import tasks
from contextkb.celery import app
from tests.workers import database_env, start_celery_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def other_database():
    """Database B on the same server: (url, host, port, name)."""
    params = connection.get_connection_params()
    name = f"test_ckb_other_{uuid.uuid4().hex[:8]}"
    admin = {k: params[k] for k in ("host", "port", "user") if k in params}
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = connection.settings_dict
    url = f"postgres://{quote(db['USER'])}@{quote(db['HOST'], safe='')}:{db['PORT']}/{name}"
    yield url, (str(db["HOST"]), str(db["PORT"]), name)
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_worker_refuses_and_dead_letters_a_task_enqueued_for_another_database(other_database):
    url, key_b = other_database
    var_b = Path(tempfile.mkdtemp(prefix="ckb-db-b-"))
    queue = f"bound-test-{uuid.uuid4().hex[:8]}"
    env = database_env(DATABASE_URL=url, CONTEXTKB_VAR_DIR=str(var_b), LOG_FORMAT="text")
    worker = start_celery_worker(queue, env)
    try:
        folders_b = local_broker_folders(var_b, key_b)
        # The two databases' local broker folders differ: by default they share nothing.
        assert folders_b["data_folder_in"] != local_broker_folders(var_b)["data_folder_in"]
        with app.connection_for_write(transport_options=folders_b) as conn:
            sent = tasks.embed_record.apply_async(args=(4242,), queue=queue, connection=conn)

        dead = var_b / "celery" / "dead-letter" / f"{sent.id}.json"
        deadline = time.monotonic() + 60
        while not dead.exists() and time.monotonic() < deadline:
            assert worker.poll() is None, worker.communicate()[0].decode()
            time.sleep(0.2)
        assert dead.exists(), "the worker of database B did not refuse the task"
        kept = json.loads(dead.read_text())
        assert kept["task"] == "apps.retrieval.tasks.embed_record"
        assert kept["args"] == [4242]
        assert kept["database"] == database_identity()
        assert kept["refused_by"].endswith("/" + key_b[2])
        assert kept["refused_by"] != kept["database"]
    finally:
        worker.terminate()
        log = worker.communicate(timeout=30)[0].decode()
        shutil.rmtree(var_b, ignore_errors=True)
    # Loudly: an error naming both databases; and the task never ran (B has no tables, so a run
    # would have failed with an error about records_record).
    assert "REFUSED task apps.retrieval.tasks.embed_record" in log
    assert database_identity() in log
    assert "records_record" not in log
    assert DATABASE_HEADER == "contextkb_database"
