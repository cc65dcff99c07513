"""manage.py backup OUT: a consistent pg_dump (custom format) of the whole database."""

from __future__ import annotations

import os
import re
from pathlib import Path

import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apps.core.management.commands._pgtools import database_target, pg_binary, run_with_progress


class Command(BaseCommand):
    help = (
        "Write a backup of the whole database (pg_dump custom format: spaces, members, records, "
        "revisions, links, verifications, API tokens (hashed), embeddings, the audit log) to OUT. "
        "OUT may be a folder: the file is then named contextkb-<date>T<time>.dump. One consistent "
        "snapshot, safe while the site runs; restore it with `manage.py restore`."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "out", type=Path, help="File (or existing folder) to write, e.g. /backups/"
        )
        parser.add_argument(
            "--database-url", help="Back up this database instead of the configured one."
        )

    def handle(self, *args, out: Path, database_url: str | None = None, **options):
        uri, env = database_target(database_url)
        out = out.expanduser().resolve()
        if out.is_dir():
            out = out / f"contextkb-{timezone.now():%Y-%m-%dT%H%M%S}.dump"
        if not out.parent.is_dir():
            raise CommandError(f"{out.parent} is not a folder; create it first.")
        partial = out.with_name(out.name + ".partial")
        # --no-owner/--no-acl: restorable into a server with other role names.
        cmd = [
            pg_binary("pg_dump"),
            "--format=custom",
            "--no-owner",
            "--no-acl",
            "--verbose",
            "--file",
            str(partial),
            "--dbname",
            uri,
        ]
        code, problems = run_with_progress(
            cmd,
            env=env,
            total=self._table_count(uri, env),
            step=re.compile(r"dumping contents of table"),
            desc="backup",
        )
        if code != 0:
            partial.unlink(missing_ok=True)
            raise CommandError(f"pg_dump failed; no backup was written: {problems}")
        # Only a complete dump takes the final name, so OUT is never a half-written file.
        os.replace(partial, out)
        self.stdout.write(f"Backup written to {out} ({out.stat().st_size:,} bytes).")

    @staticmethod
    def _table_count(uri: str, env: dict[str, str]) -> int:
        """For the progress bar only; pg_dump reports connection problems itself."""
        try:
            with psycopg.connect(uri, password=env.get("PGPASSWORD"), connect_timeout=10) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                ).fetchone()
        except psycopg.Error:
            return 0
        return int(row[0]) if row else 0
