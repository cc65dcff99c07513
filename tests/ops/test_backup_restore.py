"""manage.py backup / restore round-trip a populated database into a separate one."""

import uuid

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from apps.accounts import services as accounts
from apps.records import services
from apps.records.models import Link, Record, Revision, Verification
from tests.factories import make_record

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def spare_database():
    """An empty database on the same server, dropped afterwards."""
    params = connection.get_connection_params()
    name = f"test_ckb_restore_{uuid.uuid4().hex[:8]}"
    admin = {k: v for k, v in params.items() if k in ("host", "port", "user", "password")}
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    host, port, user = params.get("host"), params.get("port"), params.get("user")
    url = (
        f"postgresql://{user}@/{name}?host={host}&port={port}"
        if str(host).startswith("/")
        else f"postgresql://{user}@{host}:{port}/{name}"
    )
    yield url, {**admin, "dbname": name}
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_backup_and_restore_keep_records_history_links_verifications_and_tokens(
    space, owner, admin_user, tmp_path, spare_database
):
    decision = make_record(space=space, actor=owner, title="Use Postgres", body="Because.")
    services.record_update(
        record=decision, actor=owner, expected_version=1, changes={"body": "Because ACID."}
    )
    constraint = make_record(space=space, actor=owner, kind="constraint", title="No MySQL")
    services.record_link(source=constraint, target=decision, type="constrains", actor=owner)
    services.record_verify(record=decision, actor=admin_user)
    token, plain = accounts.token_create(user=owner, name="ci", scope="read_write")
    expected = {
        "records": Record.objects.count(),
        "revisions": Revision.objects.count(),
        "links": Link.objects.count(),
        "verifications": Verification.objects.count(),
    }
    assert expected["revisions"] >= 3 and expected["verifications"] >= 1

    dump = tmp_path / "ckb.dump"
    call_command("backup", str(dump))
    assert dump.stat().st_size > 1000

    url, conninfo = spare_database
    call_command("restore", str(dump), database_url=url)
    with psycopg.connect(**conninfo) as conn:
        count = lambda table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: E731
        assert count("records_record") == expected["records"]
        assert count("records_revision") == expected["revisions"]
        assert count("records_link") == expected["links"]
        assert count("records_verification") == expected["verifications"]
        body, version = conn.execute(
            "SELECT body, version FROM records_record WHERE key = %s", [decision.key]
        ).fetchone()
        assert (body, version) == ("Because ACID.", 2)
        # The token still authenticates against the restored copy (same hash).
        assert conn.execute(
            "SELECT name FROM accounts_apitoken WHERE token_hash = %s", [token.hash(plain)]
        ).fetchone() == ("ci",)
        # pgvector came along.
        assert conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()

    # A second restore into the now non-empty database is refused unless forced.
    with pytest.raises(CommandError, match="already has"):
        call_command("restore", str(dump), database_url=url)
    call_command("restore", str(dump), database_url=url, force=True)


def test_restore_of_a_missing_file_changes_nothing(tmp_path):
    with pytest.raises(CommandError, match="does not exist"):
        call_command("restore", str(tmp_path / "nope.dump"))
