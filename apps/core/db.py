"""Database start-up checks: contextkb needs PostgreSQL with pgvector >= 0.7."""

from django.core.exceptions import ImproperlyConfigured
from django.db import connection

MIN_PGVECTOR = (0, 7)


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


def require_pgvector(conn=connection) -> str:
    """Return the pgvector version available to the database, or fail with a clear message."""
    if conn.vendor != "postgresql":
        raise ImproperlyConfigured("contextkb needs PostgreSQL (with pgvector); got " + conn.vendor)
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT default_version, installed_version FROM pg_available_extensions "
            "WHERE name = 'vector'"
        )
        row = cursor.fetchone()
    if row is None:
        raise ImproperlyConfigured(
            "The PostgreSQL server at DATABASE_URL has no pgvector extension. Install pgvector "
            ">= 0.7 on it (e.g. the pgvector/pgvector Docker image or your distribution's "
            "postgresql-NN-pgvector package), or unset DATABASE_URL to use the embedded server."
        )
    version = row[1] or row[0]
    if _version_tuple(version) < MIN_PGVECTOR:
        raise ImproperlyConfigured(
            f"pgvector {version} is too old: contextkb needs pgvector >= "
            f"{'.'.join(map(str, MIN_PGVECTOR))} (HNSW indexes). Upgrade the extension."
        )
    return version


def require_pgvector_at_startup() -> str:
    """`require_pgvector()` for a server process starting up. `uvicorn --workers N` imports the
    ASGI app inside its event loop, where Django refuses database calls, so the check then runs in
    a short-lived thread (whose connection is closed afterwards)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return require_pgvector()

    def check() -> str:
        try:
            return require_pgvector()
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(check).result()
