"""Sign-in brute-force protection, counted from the audit log (so every web process agrees).

Three counts over the last LOGIN_LOCKOUT_WINDOW seconds of failed sign-ins:

- one account from one address (LOGIN_LOCKOUT_ACCOUNT_FAILURES, default 5): that address may not
  try that account any more; the account itself stays open everywhere else, so someone guessing
  a colleague's password cannot lock the colleague out;
- one address over any accounts (LOGIN_LOCKOUT_IP_FAILURES, default 50): that address is refused;
- one account from any addresses (LOGIN_LOCKOUT_ACCOUNT_ANY_ADDRESS_FAILURES, default 20): guessing
  spread over many addresses locks the account, except from addresses where its user signed in
  successfully within LOGIN_LOCKOUT_KNOWN_ADDRESS_DAYS, so even a sustained attack never keeps the
  user out of their usual network.

A lock lifts on its own once the window since the failures that caused it has passed (while
locked, refused attempts are logged as `login_blocked` and do not extend it), or at once with
`manage.py signin_unlock`. A successful sign-in does not reset the counts, so guessing between a
real user's sign-ins still locks.

Password sign-ins only. The counts are fed by Django's user_login_failed, which only password
checks send (apps.audit.backends and the sign-in forms), and a lock is checked only there; a
single sign-on through the identity provider (apps.sso) never calls authenticate() with a
password, so it is neither counted nor refused here: guessing someone's local password cannot
keep them out of SSO, and the provider applies its own protection. A successful SSO sign-in is
still audited as a sign-in, so its address counts as one the user is known to sign in from.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q
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
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}, "
            "or ask an administrator to lift the lock."
        )


def _window() -> dt.timedelta:
    return dt.timedelta(seconds=settings.LOGIN_LOCKOUT_WINDOW)


def _check(filters: Q, limit: int, reason: str, now: dt.datetime) -> Lock | None:
    if limit <= 0:
        return None
    recent = list(
        AuditEvent.objects.filter(filters, kind=AuditEvent.Kind.LOGIN_FAILED)
        .filter(created_at__gte=now - _window())
        .order_by("-created_at")
        .values_list("created_at", flat=True)[:limit]
    )
    if len(recent) < limit:
        return None
    # Locked until the oldest of the last `limit` failures leaves the window.
    until = recent[-1] + _window()
    return Lock(reason=reason, retry_after=max(1, int((until - now).total_seconds())))


def _unlock_times(username: str | None, ip: str | None, now: dt.datetime) -> dict:
    """When an administrator last lifted each kind of lock that covers this attempt (one query;
    failures before that no longer count). Keys: "pair", "address", "account"."""
    scope = Q(username="", ip=None)  # `signin_unlock --all`
    if username:
        scope |= Q(username=username)
    if ip:
        scope |= Q(ip=ip)
    times: dict[str, dt.datetime] = {}
    rows = AuditEvent.objects.filter(
        scope, kind=AuditEvent.Kind.LOGIN_UNLOCKED, created_at__gte=now - _window()
    ).values_list("username", "ip", "created_at")
    for name, address, at in rows:
        covers = {
            "pair": (not name or name == username) and (address is None or address == ip),
            "address": not name and (address is None or address == ip),
            "account": address is None and (not name or name == username),
        }
        for key, covered in covers.items():
            if covered and (key not in times or at > times[key]):
                times[key] = at
    return times


def _after(filters: Q, unlocked_at: dt.datetime | None) -> Q:
    return filters & Q(created_at__gt=unlocked_at) if unlocked_at else filters


def _known_address(username: str, ip: str, now: dt.datetime) -> bool:
    days = settings.LOGIN_LOCKOUT_KNOWN_ADDRESS_DAYS
    return (
        days > 0
        and AuditEvent.objects.filter(
            kind=AuditEvent.Kind.LOGIN,
            username=username,
            ip=ip,
            created_at__gte=now - dt.timedelta(days=days),
        ).exists()
    )


def lock_for(
    *, username: str | None, ip: str | None, now: dt.datetime | None = None
) -> Lock | None:
    """The lock that refuses a sign-in for this username from this address, or None."""
    now = now or timezone.now()
    username = (username or "")[:150] or None
    unlocked = _unlock_times(username, ip, now)
    if username and ip:
        lock = _check(
            _after(Q(username=username, ip=ip), unlocked.get("pair")),
            settings.LOGIN_LOCKOUT_ACCOUNT_FAILURES,
            "account",
            now,
        )
        if lock:
            return lock
    if ip:
        lock = _check(
            _after(Q(ip=ip), unlocked.get("address")),
            settings.LOGIN_LOCKOUT_IP_FAILURES,
            "address",
            now,
        )
        if lock:
            return lock
    if username:
        lock = _check(
            _after(Q(username=username), unlocked.get("account")),
            settings.LOGIN_LOCKOUT_ACCOUNT_ANY_ADDRESS_FAILURES,
            "account",
            now,
        )
        if lock and not (ip and _known_address(username, ip, now)):
            return lock
    return None


def current_locks(*, now: dt.datetime | None = None) -> list[dict]:
    """Every account/address pair, address and account locked right now (for the operators'
    `signin_unlock` listing): {what, who, failures, retry_after}."""
    from django.db.models import Count

    now = now or timezone.now()
    recent = AuditEvent.objects.filter(
        kind=AuditEvent.Kind.LOGIN_FAILED, created_at__gte=now - _window()
    )
    checks = [
        ("pair", ("username", "ip"), settings.LOGIN_LOCKOUT_ACCOUNT_FAILURES),
        ("address", ("ip",), settings.LOGIN_LOCKOUT_IP_FAILURES),
        ("account", ("username",), settings.LOGIN_LOCKOUT_ACCOUNT_ANY_ADDRESS_FAILURES),
    ]
    found = []
    for key, fields, limit in checks:
        if limit <= 0:
            continue
        for group in recent.values(*fields).annotate(n=Count("id")).filter(n__gte=limit):
            username, ip = group.get("username") or None, group.get("ip")
            if any(group[name] in (None, "") for name in fields):
                continue
            filters = Q(**{name: group[name] for name in fields})
            unlocked = _unlock_times(username, ip, now).get(key)
            lock = _check(_after(filters, unlocked), limit, key, now)
            if lock is None:
                continue  # lifted by an administrator since
            who = {"pair": f"{username} from {ip}", "address": ip, "account": username}[key]
            found.append(
                {
                    "what": "address" if key == "address" else "account",
                    "who": who + (" (any address)" if key == "account" else ""),
                    "failures": group["n"],
                    "retry_after": lock.retry_after,
                }
            )
    return found
