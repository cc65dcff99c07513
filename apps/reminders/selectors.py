"""Reads for digests, review queues and the health dashboard."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Exists, Min, OuterRef, Prefetch, Q, QuerySet, Sum
from django.utils import timezone

from apps.accounts.models import Membership, Space, User
from apps.records.models import Record, SuspectReason
from apps.reminders import usage as usage_mod
from apps.reminders.models import DriftReport, HealthSnapshot

NEEDS_REVIEW = (Record.Freshness.DUE, Record.Freshness.STALE, Record.Freshness.SUSPECT)
# Records whose status means nobody relies on them any more: never nagged about.
RETIRED = (Record.Status.SUPERSEDED, Record.Status.REJECTED, Record.Status.DEPRECATED)
IMPACT_WEIGHT = {"high": 3, "medium": 2, "low": 1}
KIND_WEIGHT = {"guardrail": 3, "constraint": 2, "intent": 1, "decision": 2}
TREND_DAYS = 84  # 12 weeks


@dataclass
class Item:
    """One record in a digest or queue, with why it is listed and how urgent it is."""

    record: Record
    reasons: list[SuspectReason]
    usage: int
    days_stale: int
    score: int
    links: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return self.record.freshness


@dataclass
class SpaceGroup:
    space: Space
    items: list[Item]


def impact_weight(record: Record) -> int:
    if record.kind == Record.Kind.DECISION and record.impact:
        return IMPACT_WEIGHT.get(record.impact, 1)
    return KIND_WEIGHT.get(record.kind, 1)


def days_stale(record: Record, reasons: list[SuspectReason], *, now: dt.datetime) -> int:
    """Days since the record stopped being trustworthy: its review date, or its oldest reason."""
    starts = [r.created_at for r in reasons]
    if record.next_review_at <= now:
        starts.append(record.next_review_at)
    if not starts:
        return 0
    return max(0, (now - min(starts)).days)


def urgency(*, usage: int, weight: int, days: int) -> int:
    """usage * impact * days stale, each shifted by one so that a zero never hides the others."""
    return (1 + usage) * weight * (1 + days)


def _attention_qs() -> QuerySet[Record]:
    return (
        Record.objects.active()
        .filter(freshness__in=NEEDS_REVIEW)
        .exclude(status__in=RETIRED)
        .select_related("space", "owner_user", "owner_team")
        .prefetch_related(
            Prefetch(
                "suspect_reasons",
                queryset=SuspectReason.objects.filter(resolved_at__isnull=True)
                .select_related("cause_record")
                .order_by("created_at"),
                to_attr="open_reasons",
            )
        )
    )


def _items(records, *, now: dt.datetime) -> list[Item]:
    records = list(records)
    counts = usage_mod.usage_counts([r.pk for r in records])
    items = []
    for record in records:
        reasons = list(getattr(record, "open_reasons", []))
        days = days_stale(record, reasons, now=now)
        used = counts.get(record.pk, 0)
        items.append(
            Item(
                record=record,
                reasons=reasons,
                usage=used,
                days_stale=days,
                score=urgency(usage=used, weight=impact_weight(record), days=days),
            )
        )
    items.sort(key=lambda i: (-i.score, i.record.next_review_at, i.record.key))
    return items


def _grouped(items: list[Item]) -> list[SpaceGroup]:
    groups: dict[int, SpaceGroup] = {}
    for item in items:
        groups.setdefault(item.record.space_id, SpaceGroup(item.record.space, [])).items.append(
            item
        )
    return sorted(groups.values(), key=lambda g: (-g.items[0].score, g.space.name))


def digest_items(*, user: User, now: dt.datetime | None = None) -> list[SpaceGroup]:
    """The owner's due, stale and suspect records (their own and their teams'), grouped by
    space, most urgent first."""
    now = now or timezone.now()
    member_of = Membership.objects.filter(user=user).values("space_id")
    # Records the user owns, and records owned by a team they are in.
    records = _attention_qs().filter(
        Q(owner_user=user) | Q(owner_team__in=user.teams.values("id")), space_id__in=member_of
    )
    return _grouped(_items(records, now=now))


def escalation_items(*, user: User, now: dt.datetime | None = None) -> list[SpaceGroup]:
    """For a space admin: records stale or suspect for longer than the space's escalation
    period, and orphaned records, in the spaces they administer."""
    now = now or timezone.now()
    admin_of = Membership.objects.filter(user=user, role=Membership.Role.ADMIN).values("space_id")
    records = (
        _attention_qs()
        .filter(space_id__in=admin_of)
        .annotate(
            oldest_reason=Min(
                "suspect_reasons__created_at",
                filter=Q(suspect_reasons__resolved_at__isnull=True),
            )
        )
    )
    chosen = []
    for record in records:
        limit = now - dt.timedelta(days=record.space.escalation_days)
        orphaned = record.owner_user_id is None and record.owner_team_id is None
        old_reason = record.oldest_reason is not None and record.oldest_reason <= limit
        long_stale = record.next_review_at <= limit
        if orphaned or old_reason or long_stale:
            chosen.append(record)
    return _grouped(_items(chosen, now=now))


def users_with_digest_items(*, frequency: str) -> list[int]:
    """Ids of active users with that digest frequency who own something needing review."""
    owned = (
        Record.objects.active()
        .filter(
            Q(owner_user=OuterRef("pk")) | Q(owner_team__members=OuterRef("pk")),
            freshness__in=NEEDS_REVIEW,
        )
        .exclude(status__in=RETIRED)
        .filter(space__memberships__user=OuterRef("pk"))
    )
    return list(
        User.objects.filter(is_active=True, digest_frequency=frequency)
        .filter(Exists(owned))
        .values_list("id", flat=True)
    )


def admins_with_escalations(*, now: dt.datetime | None = None) -> list[int]:
    """Active space admins (with digests not off) of spaces that have something to escalate."""
    now = now or timezone.now()
    candidates = (
        User.objects.filter(is_active=True, memberships__role=Membership.Role.ADMIN)
        .exclude(digest_frequency=User.DigestFrequency.OFF)
        .distinct()
    )
    return [u.pk for u in candidates if escalation_items(user=u, now=now)]


def review_queue(*, user: User, now: dt.datetime | None = None) -> dict:
    """What `user` should verify next, and (for space admins) the orphans to reassign."""
    now = now or timezone.now()
    mine = digest_items(user=user, now=now)
    admin_of = Membership.objects.filter(user=user, role=Membership.Role.ADMIN).values("space_id")
    orphans = _items(
        _attention_qs().filter(
            space_id__in=admin_of, owner_user__isnull=True, owner_team__isnull=True
        ),
        now=now,
    )
    return {"mine": mine, "orphans": orphans, "count": sum(len(g.items) for g in mine)}


# --- health dashboard ---------------------------------------------------------------------------


def _trend(space_ids, *, today: dt.date) -> list[dict]:
    start = today - dt.timedelta(days=TREND_DAYS - 1)
    rows = (
        HealthSnapshot.objects.filter(space_id__in=space_ids, day__gte=start)
        .values("day")
        .annotate(fresh=Sum("fresh"), due=Sum("due"), stale=Sum("stale"), suspect=Sum("suspect"))
        .order_by("day")
    )
    return list(rows)


def health(*, spaces: QuerySet[Space], now: dt.datetime | None = None, coverage: bool) -> dict:
    """Everything the health dashboard shows for a set of spaces (a constant number of queries)."""
    now = now or timezone.now()
    space_ids = list(spaces.values_list("id", flat=True))
    records = Record.objects.active().filter(space_id__in=space_ids)
    counts = {
        row["freshness"]: row["n"] for row in records.values("freshness").annotate(n=Count("id"))
    }
    total = sum(counts.values())
    shares = []
    for state in Record.Freshness.values:
        n = counts.get(state, 0)
        shares.append(
            {"state": state, "count": n, "percent": round(100 * n / total) if total else 0}
        )
    attention = records.filter(freshness__in=(Record.Freshness.STALE, Record.Freshness.SUSPECT))
    by_owner = (
        attention.exclude(owner_user__isnull=True)
        .values(
            "owner_user__id",
            "owner_user__username",
            "owner_user__first_name",
            "owner_user__last_name",
        )
        .annotate(
            stale=Count("id", filter=Q(freshness=Record.Freshness.STALE)),
            suspect=Count("id", filter=Q(freshness=Record.Freshness.SUSPECT)),
            total=Count("id"),
        )
        .order_by("-total", "owner_user__username")[:20]
    )
    orphaned = list(
        records.filter(owner_user__isnull=True, owner_team__isnull=True)
        .exclude(status__in=RETIRED)
        .select_related("space")
        .order_by("space__name", "kind", "number")[:50]
    )
    stale_records = list(
        attention.exclude(status__in=RETIRED).select_related("space", "owner_user")[:2000]
    )
    used = usage_mod.usage_counts([r.pk for r in stale_records])
    most_used = sorted((r for r in stale_records if used.get(r.pk)), key=lambda r: -used[r.pk])[:10]
    for record in most_used:
        record.usage = used[record.pk]
    uncovered = None
    if coverage:
        uncovered = uncovered_paths(since=now - dt.timedelta(days=90))
    return {
        "total": total,
        "shares": shares,
        "trend": _trend(space_ids, today=timezone.localdate(now)),
        "by_owner": list(by_owner),
        "orphaned": orphaned,
        "most_used_stale": most_used,
        "uncovered": uncovered,
        "gaps": usage_mod.open_gaps(space_ids=space_ids),
    }


def uncovered_paths(*, since: dt.datetime, limit: int = 30) -> list[dict]:
    """Changed paths from recent drift reports that no record is anchored to, most changed first."""
    tally: dict[str, int] = defaultdict(int)
    for paths in DriftReport.objects.filter(created_at__gte=since).values_list(
        "unmatched_paths", flat=True
    )[:500]:
        for path in paths:
            tally[path] += 1
    ranked = sorted(tally.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    return [{"path": p, "changes": n} for p, n in ranked]
