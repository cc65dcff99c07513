"""Celery and the request context: logs stay JSON in workers, and a task carries the id of the
request that enqueued it, so `request_id` links a web request to the work it caused.

Connected in CoreConfig.ready() (web processes and workers alike).
"""

from __future__ import annotations

import logging

from celery.signals import before_task_publish, setup_logging, task_postrun, task_prerun

from apps.core import request_context

HEADER = "contextkb_request_id"
_active: dict[str, object] = {}  # task id -> the context token to reset when it ends


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
