"""manage.py restore IN: load a backup made by `manage.py backup` into an empty database."""

from __future__ import annotations

import re
import subprocess
import tempfile
from pathlib import Path

import psycopg
from django.core.management.base import BaseCommand, CommandError

from apps.core.management.commands._pgtools import database_target, pg_binary, run_with_progress


class Command(BaseCommand):
    help = (
        "Restore a backup made by `manage.py backup` into the configured database (or "
        "--database-url), all or nothing (one transaction). The target must be empty unless "
        "--force, which drops and replaces every object the backup contains. Stop the web "
        "processes and workers first; run `manage.py migrate` afterwards if the backup comes "
        "from an older release."
    )

    def add_arguments(self, parser):
        parser.add_argument("source", type=Path, help="A file written by `manage.py backup`.")
        parser.add_argument(
            "--database-url", help="Restore into this database instead of the configured one."
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Replace the contents of a database that is not empty.",
        )

    def handle(self, *args, source: Path, database_url=None, force=False, **options):
        source = source.expanduser()
        if source.is_dir():
            raise CommandError(f"{source} is a folder; give the backup file inside it.")
        if not source.is_file():
            raise CommandError(f"{source} does not exist.")
        tables, listing = self._tables_in_backup(source)
        uri, env = database_target(database_url)
        existing, has_vector = self._table_count(uri, env)
        if existing and not force:
            raise CommandError(
                f"The target database already has {existing} tables; nothing was changed. "
                "Restore into an empty database, or pass --force to replace its contents."
            )
        cmd = [
            pg_binary("pg_restore"),
            "--no-owner",
            "--no-acl",
            "--exit-on-error",
            "--single-transaction",
            "--verbose",
            "--dbname",
            uri,
        ]
        if force:
            cmd += ["--clean", "--if-exists"]
        with tempfile.NamedTemporaryFile("w", suffix=".list") as toc:
            if has_vector:
                # The app's role is not a superuser: it cannot create, drop or comment on the
                # extension, which the target already has; restore everything else.
                toc.write(
                    "".join(
                        line
                        for line in listing.splitlines(keepends=True)
                        if not re.search(
                            r"\b(EXTENSION - vector|COMMENT - EXTENSION vector)\b", line
                        )
                    )
                )
                toc.flush()
                cmd += ["--use-list", toc.name]
            cmd.append(str(source))
            code, problems = run_with_progress(
                cmd,
                env=env,
                total=tables,
                step=re.compile(r"processing data for table"),
                desc="restore",
            )
        if code != 0:
            raise CommandError(
                "pg_restore failed; nothing was changed (one transaction): " + problems
            )
        self.stdout.write(
            f"Restored {source} ({tables} tables). Run `manage.py migrate` if the backup "
            "comes from an older release."
        )

    @staticmethod
    def _tables_in_backup(source: Path) -> tuple[int, str]:
        """Read the backup's table of contents before touching the database: a file that is not
        a pg_dump archive, or not one of contextkb's, is refused with a clear message."""
        # An argument list (no shell) of our own binary and the given path.
        listing = subprocess.run(  # noqa: S603
            [pg_binary("pg_restore"), "--list", str(source)],
            capture_output=True,
            text=True,
            check=False,
        )
        if listing.returncode != 0:
            reason = listing.stderr.strip().removeprefix("pg_restore: error: ")
            raise CommandError(
                f"{source} is not a backup made by `manage.py backup` ({reason}); nothing was "
                "changed."
            )
        if not re.search(r"TABLE public records_record\b", listing.stdout):
            raise CommandError(
                f"{source} is a PostgreSQL dump, but not of a contextkb database (it has no "
                "records table); nothing was changed."
            )
        return len(re.findall(r"\bTABLE DATA public ", listing.stdout)), listing.stdout

    @staticmethod
    def _table_count(uri: str, env: dict[str, str]) -> tuple[int, bool]:
        """How many tables the target has, and whether pgvector is installed there."""
        try:
            with psycopg.connect(uri, password=env.get("PGPASSWORD"), connect_timeout=10) as conn:
                row = conn.execute(
                    "SELECT (SELECT count(*) FROM pg_tables WHERE schemaname = 'public'), "
                    "EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')"
                ).fetchone()
        except psycopg.Error as exc:
            raise CommandError(f"Cannot connect to the target database: {exc}") from None
        return (int(row[0]), bool(row[1])) if row else (0, False)
