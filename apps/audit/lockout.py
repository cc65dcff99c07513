"""Sign-in brute-force protection, counted from the audit log (so every web process agrees).

An account is locked after LOGIN_LOCKOUT_ACCOUNT_FAILURES failed sign-ins within
LOGIN_LOCKOUT_WINDOW seconds; a client address after LOGIN_LOCKOUT_IP_FAILURES (spread over any
accounts). The lock lifts when the window since the last counted failure has passed. A successful
sign-in does not reset the per-account count, so guessing between a real user's sign-ins still
locks; the window is short enough for people to wait out.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone

from apps.audit.models import AuditEvent


@dataclass(frozen=True)
class Lock:
    reason: str  # "account" or "address"
    retry_after: int  # seconds

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.retry_after / 60))
        what = "this account" if self.reason == "account" else "your network address"
        return (
            f"Too many failed sign-in attempts for {what}. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
        )


def _window() -> dt.timedelta:
    return dt.timedelta(seconds=settings.LOGIN_LOCKOUT_WINDOW)


def _check(filter_kwargs: dict, limit: int, reason: str, now: dt.datetime) -> Lock | None:
    if limit <= 0:
        return None
    since = now - _window()
    recent = list(
        AuditEvent.objects.filter(
            kind=AuditEvent.Kind.LOGIN_FAILED, created_at__gte=since, **filter_kwargs
        )
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    if len(recent) < limit:
        return None
    # Locked until the oldest of the last `limit` failures leaves the window.
    until = recent[-1] + _window()
    return Lock(reason=reason, retry_after=max(1, int((until - now).total_seconds())))


def lock_for(
    *, username: str | None, ip: str | None, now: dt.datetime | None = None
) -> Lock | None:
    """The lock that refuses a sign-in for this username from this address, or None."""
    now = now or timezone.now()
    if username:
        lock = _check(
            {"username": username[:150]},
            settings.LOGIN_LOCKOUT_ACCOUNT_FAILURES,
            "account",
            now,
        )
        if lock:
            return lock
    if ip:
        return _check({"ip": ip}, settings.LOGIN_LOCKOUT_IP_FAILURES, "address", now)
    return None
