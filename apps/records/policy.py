"""Freshness policy: how often a record must be re-verified, and what state that puts it in.

Intervals (days) come from DEFAULT_INTERVALS, overridden per space by `Space.review_policy`
with the same keys. Decisions are keyed by reversibility and impact.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from django.utils import timezone

if TYPE_CHECKING:  # annotations only
    from apps.records.models import Record, Verification

DEFAULT_INTERVALS: dict[str, int] = {
    "decision.one_way.high": 60,
    "decision.one_way.medium": 90,
    "decision.one_way.low": 120,
    "decision.two_way": 180,
    "decision": 120,  # reversibility not stated
    "constraint": 90,
    "intent": 120,
    "guardrail": 60,
}


def policy_key(*, kind: str, reversibility: str = "", impact: str = "") -> str:
    if kind != "decision":
        return kind
    if reversibility == "one_way":
        return f"decision.one_way.{impact or 'medium'}"
    if reversibility == "two_way":
        return "decision.two_way"
    return "decision"


def review_interval_days(
    *, kind: str, reversibility: str = "", impact: str = "", overrides: dict | None = None
) -> int:
    key = policy_key(kind=kind, reversibility=reversibility, impact=impact)
    merged = {**DEFAULT_INTERVALS, **(overrides or {})}
    return int(merged[key])


def next_review_at(record: Record, *, now: datetime) -> datetime:
    days = review_interval_days(
        kind=record.kind,
        reversibility=record.reversibility,
        impact=record.impact,
        overrides=record.space.review_policy,
    )
    return now + timedelta(days=days)


def freshness_for(
    *,
    next_review_at: datetime,
    has_open_reasons: bool,
    now: datetime,
    due_window_days: int,
    status: str = "",
    valid_until: date | None = None,
    verified: bool = True,
) -> str:
    """The one derivation of a record's freshness from its stored facts (`freshness_sql` is its
    SQL twin; a parity test keeps them equal). It needs no sweep: dates are compared with `now`.

    Superseded records no longer hold: stale. Then open reasons or a passed valid-until date:
    suspect. Then a passed review date: stale; a review date within the space's due window: due.
    Otherwise fresh, or `unverified` ("Not yet verified") when nobody has ever verified it
    (`verified=False`: no `last_verified_at`). Writing a record starts its review clock, so a
    never-verified record is `unverified` within its first interval and then due and stale like
    any other; it is never called fresh."""
    if status == SUPERSEDED:
        return "stale"
    if has_open_reasons or valid_until_passed(valid_until, now=now):
        return "suspect"
    if next_review_at <= now:
        return "stale"
    if next_review_at <= now + timedelta(days=due_window_days):
        return "due"
    return "fresh" if verified else UNVERIFIED


SUPERSEDED = "superseded"
UNVERIFIED = "unverified"


def unverified_note(*, created_at: datetime, next_review_at: datetime, now: datetime) -> str:
    """The dates beside an `unverified` state, in one wording for every door: "Never verified;
    written 3 days ago; first review due 2027-03-04." """
    days = max(0, (timezone.localdate(now) - timezone.localdate(created_at)).days)
    ago = "today" if days == 0 else f"{days} day{'s' if days != 1 else ''} ago"
    return (
        f"Never verified; written {ago}; "
        f"first review due {timezone.localdate(next_review_at):%Y-%m-%d}."
    )


def valid_until_passed(valid_until: date | None, *, now: datetime) -> bool:
    """A valid-until date holds through that day; it has passed from the next day on (the same
    rule as the sweep's evidence, `evidence.valid_until_passed`)."""
    return valid_until is not None and valid_until < timezone.localdate(now)


def record_freshness(record: Record, *, now: datetime, has_open_reasons: bool | None = None) -> str:
    """`freshness_for` for a Record instance. Open reasons come from the argument, a prefetched
    `open_reasons` list, a `has_open_reasons` annotation, or one query."""
    if has_open_reasons is None:
        if hasattr(record, "open_reasons"):
            has_open_reasons = bool(record.open_reasons)
        elif hasattr(record, "has_open_reasons"):
            has_open_reasons = bool(record.has_open_reasons)
        else:
            has_open_reasons = record.suspect_reasons.filter(resolved_at__isnull=True).exists()
    return freshness_for(
        next_review_at=record.next_review_at,
        has_open_reasons=has_open_reasons,
        now=now,
        due_window_days=record.space.due_window_days,
        status=record.status,
        valid_until=record.valid_until,
        verified=record.last_verified_at is not None,
    )


def freshness_sql(
    alias: str = "r", *, now: datetime | None = None, named: bool = False
) -> tuple[str, list | dict]:
    """The SQL twin of `freshness_for` over a records table aliased `alias`: (sql, params).

    The params are `now` and its local date; with `named=True` they are `%(fresh_now)s` and
    `%(fresh_today)s` (a dict to merge into the caller's), else positional (a list)."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    now_p, today_p = ("%(fresh_now)s", "%(fresh_today)s") if named else ("%s", "%s")
    # Cheap tests first: the open reasons are one hashed set per query (not a probe per row),
    # and the space's own due window is looked up only for records within the widest one.
    fresh = f"(CASE WHEN {alias}.last_verified_at IS NULL THEN 'unverified' ELSE 'fresh' END)"
    sql = f"""(CASE
        WHEN {alias}.status = 'superseded' THEN 'stale'
        WHEN {alias}.id IN (SELECT fr.record_id FROM records_suspectreason fr
                            WHERE fr.resolved_at IS NULL) THEN 'suspect'
        WHEN {alias}.valid_until < {today_p}::date THEN 'suspect'
        WHEN {alias}.next_review_at <= {now_p} THEN 'stale'
        WHEN {alias}.next_review_at > {now_p} + make_interval(days => (
            SELECT coalesce(max(fw.due_window_days), 0) FROM accounts_space fw)) THEN {fresh}
        WHEN {alias}.next_review_at <= {now_p} + make_interval(days => (
            SELECT fs.due_window_days FROM accounts_space fs WHERE fs.id = {alias}.space_id))
            THEN 'due'
        ELSE {fresh} END)"""  # noqa: S608 - the alias is ours, values are parameters
    if named:
        return sql, {"fresh_now": now, "fresh_today": today}
    return sql, [today, now, now, now]


def valid_until_note(verification: Verification) -> str:
    """What verifying did to a passed valid-until date, for the confirmation message."""
    old = verification.previous_valid_until
    change = verification.valid_until_change
    if change == "cleared":
        return (
            f" Its valid-until date ({old:%d %b %Y}) had passed, so it was cleared; "
            "edit the record to set a new one."
        )
    if change == "extended":
        return f" It is now valid until {verification.record.valid_until:%d %b %Y}."
    return ""


def due_window_text(days: list[int]) -> str:
    """The one wording of "due" for a set of spaces' due windows: "its review date is within
    14 days" (one window), or "… within its space's due window (7 to 14 days)"."""
    days = sorted(set(days))
    if not days:
        return "its review date is within its space's due window"
    if len(days) == 1:
        return f"its review date is within {days[0]} day{'s' if days[0] != 1 else ''}"
    return f"its review date is within its space's due window ({days[0]} to {days[-1]} days)"


# Labels for the policy form on the space health page, in display order.
POLICY_LABELS: dict[str, str] = {
    "decision.one_way.high": "One-way decisions, high impact",
    "decision.one_way.medium": "One-way decisions, medium impact",
    "decision.one_way.low": "One-way decisions, low impact",
    "decision.two_way": "Two-way decisions",
    "decision": "Decisions without a stated reversibility",
    "constraint": "Constraints",
    "intent": "Product intent",
    "guardrail": "Guardrails",
}
MIN_INTERVAL_DAYS = 1
MAX_INTERVAL_DAYS = 3650


def clean_overrides(values: dict) -> dict[str, int]:
    """Validated interval overrides (only keys that differ from the defaults are kept).

    Raises ValueError naming the bad key."""
    cleaned: dict[str, int] = {}
    for key, value in values.items():
        if key not in DEFAULT_INTERVALS:
            raise ValueError(f"Unknown policy key {key!r}.")
        if isinstance(value, bool):
            raise ValueError(f"{key}: a number of days is required.")
        try:
            days = int(value)
        except (TypeError, ValueError):
            raise ValueError(f"{key}: a number of days is required.") from None
        if not MIN_INTERVAL_DAYS <= days <= MAX_INTERVAL_DAYS:
            raise ValueError(f"{key}: between {MIN_INTERVAL_DAYS} and {MAX_INTERVAL_DAYS} days.")
        if days != DEFAULT_INTERVALS[key]:
            cleaned[key] = days
    return cleaned


def interval_days_sql(overrides: dict | None, alias: str = "r") -> tuple[str, list]:
    """A SQL CASE giving each record's review interval in days (same rules as `policy_key`)."""
    merged = {**DEFAULT_INTERVALS, **(overrides or {})}
    sql = f"""CASE
        WHEN {alias}.kind <> 'decision' THEN (CASE {alias}.kind
            WHEN 'constraint' THEN %s WHEN 'intent' THEN %s WHEN 'guardrail' THEN %s ELSE %s END)
        WHEN {alias}.reversibility = 'one_way' THEN (CASE {alias}.impact
            WHEN 'high' THEN %s WHEN 'low' THEN %s ELSE %s END)
        WHEN {alias}.reversibility = 'two_way' THEN %s
        ELSE %s END"""
    params = [
        merged["constraint"],
        merged["intent"],
        merged["guardrail"],
        merged["decision"],
        merged["decision.one_way.high"],
        merged["decision.one_way.low"],
        merged["decision.one_way.medium"],
        merged["decision.two_way"],
        merged["decision"],
    ]
    return sql, [int(p) for p in params]
