"""Structured logging: one JSON object per line, tagged with the current request id.

Configured in settings (LOGGING) with `"()": "apps.core.logs.JsonFormatter"` and the
RequestContextFilter; LOG_FORMAT=text gives the plain format for local development.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from celery import current_task

from apps.core import request_context

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged as a field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class RequestContextFilter(logging.Filter):
    """Adds request_id (and client_ip) of the request being served, or "" outside a request; in
    a Celery worker, the task's id and name, and the id of the request that enqueued it."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = request_context.current()
        if not getattr(record, "request_id", None):
            record.request_id = ctx.request_id
        if not hasattr(record, "client_ip"):
            record.client_ip = ctx.ip
        task = current_task
        if task and not hasattr(record, "task_id"):
            record.task_id = task.request.id
            record.task_name = task.name
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key in _STANDARD or key.startswith("_") or key in entry:
                continue
            if key == "request" or value is None or value == "":
                continue  # Django passes the request object itself; not serialisable
            entry[key] = value if isinstance(value, (str, int, float, bool)) else str(value)
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)
