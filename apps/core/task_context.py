"""Celery and the request context: logs stay JSON in workers, a task carries the id of the
request that enqueued it, so `request_id` links a web request to the work it caused, and the
identity of the database it was enqueued for, so no worker of another database runs it.

Connected in CoreConfig.ready() (web processes and workers alike).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import re
import time
from pathlib import Path

from celery import Task
from celery.exceptions import Reject
from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun

from apps.core import request_context

HEADER = "contextkb_request_id"
_active: dict[str, contextvars.Token] = {}  # task id -> the context token to reset when it ends


@setup_logging.connect(dispatch_uid="contextkb_celery_logging")
def _keep_django_logging(loglevel=None, **kwargs) -> None:
    """Celery would swap the root handlers for its own text format; keep settings.LOGGING (JSON
    lines with request ids) and only take the worker's --loglevel."""
    if loglevel:
        logging.getLogger().setLevel(loglevel)


@before_task_publish.connect(dispatch_uid="contextkb_request_id_publish")
def _send_request_id(headers=None, **kwargs) -> None:
    request_id = request_context.current().request_id
    if headers is not None and request_id:
        headers.setdefault(HEADER, request_id)


@task_prerun.connect(dispatch_uid="contextkb_request_id_enter")
def _enter(task_id=None, task=None, **kwargs) -> None:
    request_id = str(getattr(task.request, HEADER, None) or "") if task is not None else ""
    _active[task_id] = request_context.set_current(
        request_context.RequestContext(request_id=request_id[:64])
    )


@task_postrun.connect(dispatch_uid="contextkb_request_id_leave")
def _leave(task_id=None, **kwargs) -> None:
    token = _active.pop(task_id, None)
    if token is not None:
        request_context.reset(token)


# --- tasks bound to their database ---------------------------------------------------------------
# Every task carries the identity of the database it was enqueued for (the server's system
# identifier and the database name, read once per process). A worker of another database refuses
# it: logged as an error, written to the dead-letter folder, never run. Otherwise a `manage.py`
# pointed at another DATABASE_URL, sharing a broker, would have its record ids applied to ours.

DATABASE_HEADER = "contextkb_database"
USAGE_TASKS = {"apps.retrieval.tasks.log_context_request"}
_identities: dict[tuple, str] = {}


def _settings_key() -> tuple:
    from django.conf import settings

    db = settings.DATABASES["default"]
    return (str(db.get("HOST") or ""), str(db.get("PORT") or ""), str(db.get("NAME") or ""))


def database_identity() -> str:
    """'<system identifier>/<database name>' of the default database (cached per process)."""
    key = _settings_key()
    found = _identities.get(key)
    if found is None:
        from django.db import connection

        opened_here = connection.connection is None
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT system_identifier::text || '/' || current_database() "
                    "FROM pg_control_system()"
                )
                found = cursor.fetchone()[0]
        finally:
            # A thread of our own (the usage-log hand-off) must not keep a connection open.
            if opened_here and not connection.in_atomic_block:
                connection.close()
        _identities[key] = found
    return found


def local_broker_folders(var_dir: Path, database: tuple | None = None) -> dict[str, str]:
    """kombu filesystem-transport folders for the database this process uses (or `database`:
    host, port, name): one set per database, so two databases never share a queue by accident."""
    host, port, name = database or _settings_key()
    digest = hashlib.sha256(f"{host}:{port}/{name}".encode()).hexdigest()[:12]
    base = var_dir / "celery" / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)[:40]}-{digest}"
    for sub in ("queue", "processed", "control"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(base / "queue"),
        "data_folder_out": str(base / "queue"),
        "processed_folder": str(base / "processed"),
        # Broadcast (remote control) messages; kombu puts them in ./control otherwise.
        "control_folder": str(base / "control"),
    }


def route_task(name, args, kwargs, options, task=None, **kw):
    """Usage-log entries to "<default queue>.usage" (read by every worker, in turn with the
    default queue), so they never delay embeddings."""
    if name in USAGE_TASKS:
        from contextkb.celery import app

        return {"queue": f"{app.conf.task_default_queue}.usage"}
    return None


@before_task_publish.connect(dispatch_uid="contextkb_database_publish")
def _send_database(headers=None, **kwargs) -> None:
    if headers is None:
        return
    try:
        headers.setdefault(DATABASE_HEADER, database_identity())
    except Exception:  # database down: the task goes without (workers accept it)
        logging.getLogger(__name__).warning(
            "Task sent without its database identity", exc_info=True
        )


class DatabaseBoundTask(Task):
    """The base of every contextkb task: runs only on a worker of the database it was sent for."""

    def __call__(self, *args, **kwargs):
        sent_for = getattr(self.request, DATABASE_HEADER, None) if self.request.id else None
        if sent_for:
            mine = database_identity()
            if sent_for != mine:
                _dead_letter(self, sent_for, mine, args, kwargs)
                raise Reject(
                    f"task for database {sent_for}, this worker serves {mine}", requeue=False
                )
        return super().__call__(*args, **kwargs)


def _dead_letter(task, sent_for: str, mine: str, args, kwargs) -> None:
    from django.conf import settings

    folder = Path(settings.VAR_DIR) / "celery" / "dead-letter"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{task.request.id}.json"
    path.write_text(
        json.dumps(
            {
                "task": task.name,
                "id": task.request.id,
                "args": args,
                "kwargs": kwargs,
                "database": sent_for,
                "refused_by": mine,
                "refused_at": time.time(),
            },
            default=str,
        ),
        encoding="utf-8",
    )
    logging.getLogger(__name__).error(
        "REFUSED task %s[%s]: it was sent for database %s but this worker serves %s. It was not "
        "run; the message is kept in %s. Point a worker at that database, or check DATABASE_URL "
        "and CELERY_BROKER_URL of the process that sent it.",
        task.name, task.request.id, sent_for, mine, path,
    )  # fmt: skip
