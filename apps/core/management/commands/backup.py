"""manage.py backup OUT: a consistent pg_dump (custom format) of the whole database."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from apps.core.management.commands._pgtools import database_target, pg_binary


class Command(BaseCommand):
    help = (
        "Write a backup of the database (pg_dump custom format: records, revisions, links, "
        "verifications, accounts, tokens, embeddings) to OUT. Safe while the site runs."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "out", type=Path, help="File to write, e.g. backups/ckb-2026-01-31.dump"
        )
        parser.add_argument(
            "--database-url", help="Back up this database instead of the configured one."
        )

    def handle(self, *args, out: Path, database_url: str | None = None, **options):
        uri, env = database_target(database_url)
        out = out.expanduser().resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        # --no-owner/--no-acl: restorable into a server with other role names.
        cmd = [
            pg_binary("pg_dump"),
            "--format=custom",
            "--no-owner",
            "--no-acl",
            "--file",
            str(partial),
            "--dbname",
            uri,
        ]
        # An argument list (no shell) of our own binary and paths.
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise CommandError(f"pg_dump failed: {result.stderr.strip()}")
        # Only a complete dump takes the final name, so OUT is never a half-written file.
        os.replace(partial, out)
        self.stdout.write(f"Backup written to {out} ({out.stat().st_size:,} bytes).")
