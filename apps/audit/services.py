"""Writing the audit log. Every front door calls `audit_log(...)`; it never raises."""

from __future__ import annotations

import logging
from typing import Any

from apps.audit.models import AuditEvent
from apps.core import request_context

logger = logging.getLogger("contextkb.audit")


def _principal_parts(actor) -> tuple[Any, Any]:
    """(user, token) for a User, an ApiToken or None."""
    from apps.accounts.models import ApiToken

    if isinstance(actor, ApiToken):
        return actor.user, actor
    if actor is not None and getattr(actor, "is_authenticated", False):
        return actor, None
    return None, None


def audit_log(
    *,
    kind: str,
    actor=None,
    username: str = "",
    token=None,
    space=None,
    message: str = "",
    details: dict[str, Any] | None = None,
    ip: str | None = None,
    path: str | None = None,
) -> AuditEvent | None:
    """Record one security event. The request id, client address and path come from the current
    request (apps.core.middleware) unless given. Never raises: auditing must not break the
    request it records; a failure is logged instead."""
    ctx = request_context.current()
    user, actor_token = _principal_parts(actor)
    token = token or actor_token
    if not username and user is not None:
        username = user.get_username()
    try:
        event = AuditEvent.objects.create(
            kind=kind,
            actor=user,
            username=(username or "")[:150],
            token=token,
            space=space,
            ip=ip if ip is not None else ctx.ip,
            request_id=ctx.request_id[:64],
            path=(path if path is not None else ctx.path)[:500],
            message=(message or "")[:500],
            details=details or {},
        )
    except Exception:
        logger.exception("could not write audit event %s", kind)
        return None
    logger.info(
        "audit %s",
        kind,
        extra={"audit_kind": kind, "username": username, "client_ip": event.ip},
    )
    return event


def audit_prune(*, older_than_days: int, now=None) -> int:
    """Delete audit events older than the retention period (0 keeps everything); returns how
    many. Sign-in locks only look back minutes and known addresses 30 days, so a retention of a
    few months never weakens them."""
    import datetime as dt

    from django.utils import timezone

    if older_than_days <= 0:
        return 0
    cutoff = (now or timezone.now()) - dt.timedelta(days=older_than_days)
    deleted, _ = AuditEvent.objects.filter(created_at__lt=cutoff).delete()
    return deleted
