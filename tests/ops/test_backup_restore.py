"""manage.py backup / restore round-trip a populated database into a separate one, and refuse
bad input (missing, corrupt, truncated or foreign files, a non-empty target) changing nothing."""

import uuid
from io import StringIO

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from apps.accounts import services as accounts
from apps.audit.models import AuditEvent
from apps.records import services
from apps.records.models import Record
from tests.factories import make_record

pytestmark = pytest.mark.django_db(transaction=True)

# Every table a user would miss after a restore, compared row by row.
TABLES = [
    "accounts_user",
    "accounts_space",
    "accounts_membership",
    "accounts_apitoken",
    "accounts_apitoken_spaces",
    "records_record",
    "records_revision",
    "records_link",
    "records_verification",
    "audit_auditevent",
]


def _admin_params() -> dict:
    params = connection.get_connection_params()
    return {k: v for k, v in params.items() if k in ("host", "port", "user", "password")}


@pytest.fixture
def spare_database():
    """An empty database on the same server, dropped afterwards: (url, psycopg kwargs)."""
    admin = _admin_params()
    name = f"test_ckb_restore_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    host, port, user = admin.get("host"), admin.get("port"), admin.get("user")
    url = (
        f"postgresql://{user}@/{name}?host={host}&port={port}"
        if str(host).startswith("/")
        else f"postgresql://{user}@{host}:{port}/{name}"
    )
    yield url, {**admin, "dbname": name}
    with psycopg.connect(dbname="postgres", autocommit=True, **admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fingerprint(conninfo: dict) -> dict[str, tuple[int, str]]:
    """(row count, md5 of all its rows as text) per table."""
    with psycopg.connect(**conninfo) as conn:
        return {
            table: conn.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                f"FROM {table} t"
            ).fetchone()
            for table in TABLES
        }


def _table_count(conninfo: dict) -> int:
    with psycopg.connect(**conninfo) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
        ).fetchone()[0]


@pytest.fixture
def populated(space, owner, admin_user):
    decision = make_record(space=space, actor=owner, title="Use Postgres", body="Because.")
    services.record_update(
        record=decision, actor=owner, expected_version=1, changes={"body": "Because ACID."}
    )
    constraint = make_record(
        space=space, actor=owner, kind="constraint", title="No MySQL", owner_user=owner
    )
    services.record_link(source=constraint, target=decision, type="constrains", actor=owner)
    services.record_verify(record=decision, actor=admin_user)
    token, plain = accounts.token_create(user=owner, name="ci", scope="read_write", spaces=[space])
    return {"decision": decision, "token": token, "plain": plain}


def test_backup_and_restore_keep_records_history_links_verifications_and_tokens(
    populated, tmp_path, spare_database
):
    decision, token, plain = populated["decision"], populated["token"], populated["plain"]
    ours = {**_admin_params(), "dbname": connection.settings_dict["NAME"]}
    before = _fingerprint(ours)
    assert before["records_revision"][0] >= 3 and before["records_verification"][0] >= 1
    assert before["audit_auditevent"][0] >= 1  # the token's creation

    out = StringIO()
    call_command("backup", str(tmp_path), stdout=out)  # a folder: a dated file inside it
    [dump] = list(tmp_path.glob("contextkb-*.dump"))
    assert str(dump) in out.getvalue()
    assert not list(tmp_path.glob("*.partial"))

    url, conninfo = spare_database
    call_command("restore", str(dump), database_url=url, stdout=StringIO())
    assert _fingerprint(conninfo) == before  # every row of every table, identical
    with psycopg.connect(**conninfo) as conn:
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
    with pytest.raises(CommandError, match=r"already has .* tables; nothing was changed"):
        call_command("restore", str(dump), database_url=url)
    with psycopg.connect(**conninfo) as conn:
        conn.execute("UPDATE records_record SET title = 'Edited after the backup'")
    call_command("restore", str(dump), database_url=url, force=True, stdout=StringIO())
    assert _fingerprint(conninfo) == before


def test_a_file_that_is_not_a_backup_is_refused_before_touching_the_database(
    tmp_path, spare_database, db
):
    url, conninfo = spare_database
    junk = tmp_path / "notes.dump"
    junk.write_text("# just some markdown\n")
    with pytest.raises(CommandError, match=r"is not a backup made by `manage\.py backup`"):
        call_command("restore", str(junk), database_url=url)
    with pytest.raises(CommandError, match="is a folder"):
        call_command("restore", str(tmp_path), database_url=url)
    with pytest.raises(CommandError, match="does not exist"):
        call_command("restore", str(tmp_path / "nope.dump"), database_url=url)
    assert _table_count(conninfo) == 0


def test_a_truncated_backup_changes_nothing(populated, tmp_path, spare_database):
    dump = tmp_path / "full.dump"
    call_command("backup", str(dump), stdout=StringIO())
    data = dump.read_bytes()
    cut = tmp_path / "cut.dump"
    cut.write_bytes(data[: len(data) - 2000])  # the table of contents is whole, the data not
    url, conninfo = spare_database
    with pytest.raises(CommandError, match="nothing was changed"):
        call_command("restore", str(cut), database_url=url)
    assert _table_count(conninfo) == 0  # one transaction: not even the schema


def test_a_dump_of_another_database_is_refused(tmp_path, spare_database, db):
    url, conninfo = spare_database
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id int)")
    other = tmp_path / "other.dump"
    call_command("backup", str(other), database_url=url, stdout=StringIO())
    ours = {**_admin_params(), "dbname": connection.settings_dict["NAME"]}
    before = _table_count(ours)
    with pytest.raises(CommandError, match="not of a contextkb database"):
        call_command("restore", str(other), force=True)
    assert _table_count(ours) == before
    assert Record.objects.count() == 0 and AuditEvent.objects.count() == 0


def test_backup_into_a_missing_folder_says_so(tmp_path, db):
    with pytest.raises(CommandError, match="is not a folder; create it first"):
        call_command("backup", str(tmp_path / "no" / "such" / "x.dump"))
