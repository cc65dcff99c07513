"""Audit Django's sign-in signals (the only hook into its login views and the admin login)."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from apps.audit.models import AuditEvent
from apps.audit.services import audit_log
from apps.core.request_context import client_ip


def _ip(request) -> str | None:
    return client_ip(request) if request is not None else None


@receiver(user_logged_in, dispatch_uid="audit_login")
def _logged_in(sender, request, user, **kwargs):
    audit_log(kind=AuditEvent.Kind.LOGIN, actor=user, ip=_ip(request))


@receiver(user_logged_out, dispatch_uid="audit_logout")
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        audit_log(kind=AuditEvent.Kind.LOGOUT, actor=user, ip=_ip(request))


@receiver(user_login_failed, dispatch_uid="audit_login_failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username") or credentials.get("email") or "")
    lock = getattr(request, "login_lock", None) if request is not None else None
    if lock is not None:
        audit_log(
            kind=AuditEvent.Kind.LOGIN_BLOCKED,
            username=username,
            ip=_ip(request),
            message=lock.message,
        )
        return
    audit_log(kind=AuditEvent.Kind.LOGIN_FAILED, username=username, ip=_ip(request))
