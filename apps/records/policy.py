"""Freshness policy: how often a record must be re-verified, and what state that puts it in.

Intervals (days) come from DEFAULT_INTERVALS, overridden per space by `Space.review_policy`
with the same keys. Decisions are keyed by reversibility and impact.
"""

from __future__ import annotations

from datetime import datetime, timedelta

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


def next_review_at(record, *, now: datetime) -> datetime:
    days = review_interval_days(
        kind=record.kind,
        reversibility=record.reversibility,
        impact=record.impact,
        overrides=record.space.review_policy,
    )
    return now + timedelta(days=days)


def freshness_for(
    *, next_review_at: datetime, has_open_reasons: bool, now: datetime, due_window_days: int
) -> str:
    """suspect beats stale beats due beats fresh."""
    if has_open_reasons:
        return "suspect"
    if next_review_at <= now:
        return "stale"
    if next_review_at <= now + timedelta(days=due_window_days):
        return "due"
    return "fresh"
