"""manage.py restore IN: load a backup made by `manage.py backup` into an empty database."""

from __future__ import annotations

import subprocess
from pathlib import Path

import psycopg
from django.core.management.base import BaseCommand, CommandError

from apps.core.management.commands._pgtools import database_target, pg_binary


class Command(BaseCommand):
    help = (
        "Restore a backup made by `manage.py backup` into the configured database (or "
        "--database-url). The target must be empty unless --force, which replaces its contents. "
        "Stop the web processes and workers first."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", type=Path, help="A file written by `manage.py backup`.")
        parser.add_argument(
            "--database-url", help="Restore into this database instead of the configured one."
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Drop the existing contents of the target database first.",
        )

    def handle(self, *args, source: Path, database_url=None, force=False, **options):
        source = source.expanduser()
        if not source.is_file():
            raise CommandError(f"{source} does not exist.")
        uri, env = database_target(database_url)
        tables = self._table_count(uri, env)
        if tables and not force:
            raise CommandError(
                f"The target database already has {tables} tables. Restore into an empty "
                "database, or pass --force to replace its contents."
            )
        cmd = [
            pg_binary("pg_restore"),
            "--no-owner",
            "--no-acl",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            uri,
        ]
        if force:
            cmd += ["--clean", "--if-exists"]
        cmd.append(str(source))
        # An argument list (no shell) of our own binary and paths.
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            raise CommandError(
                "pg_restore failed; nothing was changed (one transaction): " + result.stderr.strip()
            )
        self.stdout.write(
            f"Restored {source}. Run `manage.py migrate` if the backup predates this version."
        )

    @staticmethod
    def _table_count(uri: str, env: dict[str, str]) -> int:
        try:
            with psycopg.connect(uri, password=env.get("PGPASSWORD"), connect_timeout=10) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                ).fetchone()
        except psycopg.Error as exc:
            raise CommandError(f"Cannot connect to the target database: {exc}") from None
        return int(row[0]) if row else 0
