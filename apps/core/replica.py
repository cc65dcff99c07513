"""Read replica for the context API and MCP: their reads go to DATABASE_REPLICA_URL when it is set.

Only what runs inside `on_replica(fn, ...)` reads from the replica: for that call, this thread's
"default" connection *is* the replica connection, so the ORM and raw SQL (`connection.cursor()`)
alike read there without knowing. Everything else (sign-in, token checks, every write and every
transaction) stays on the primary, so nothing has to read its own write from a lagging copy.

When the replica fails (down, restarting, unreachable), the same call runs again on the primary
and the replica is skipped for REPLICA_RETRY_SECONDS, so AI tools keep getting answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, InterfaceError, OperationalError, connections

logger = logging.getLogger("contextkb.replica")

REPLICA = "replica"

_skip_until = 0.0  # monotonic time until which the replica is not tried (this process)


def configured() -> bool:
    return REPLICA in settings.DATABASES


def on_replica[T](fn: Callable[..., T], /, *args, **kwargs) -> T:
    """Run a read-only function against the replica (or the primary when none is configured or
    it just failed). `fn` must not write: the replica refuses writes, and `fn` may run twice."""
    global _skip_until
    primary = connections[DEFAULT_DB_ALIAS]
    if not configured() or time.monotonic() < _skip_until or primary.in_atomic_block:
        return fn(*args, **kwargs)
    replica = connections[REPLICA]
    # Per thread (and per async context): other requests keep their own connections.
    connections[DEFAULT_DB_ALIAS] = replica
    try:
        return fn(*args, **kwargs)
    except (OperationalError, InterfaceError) as exc:
        _skip_until = time.monotonic() + settings.REPLICA_RETRY_SECONDS
        logger.warning(
            "read replica failed (%s); reading from the primary for %s s",
            exc.__class__.__name__,
            settings.REPLICA_RETRY_SECONDS,
        )
        replica.close_if_unusable_or_obsolete()
    finally:
        connections[DEFAULT_DB_ALIAS] = primary
    return fn(*args, **kwargs)


def check() -> str:
    """For /readyz: "ok", "not configured", or raises when the replica does not answer."""
    if not configured():
        return "not configured"
    with connections[REPLICA].cursor() as cursor:
        cursor.execute("SELECT pg_is_in_recovery()")
        (in_recovery,) = cursor.fetchone()
    return "ok" if in_recovery else "ok (not in recovery: is this the primary?)"


class PrimaryOnlyRouter:
    """The replica alias is never chosen by the ORM on its own, nor migrated."""

    def db_for_read(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS
