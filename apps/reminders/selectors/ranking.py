"""Which records need attention, and how urgent each is: the ranking shared by digests, the
review queue and escalations (usage x impact x days in trouble, in Python, with an SQL twin
that pre-sorts large sets)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Case, Count, Prefetch, QuerySet, Value, When
from django.db.models.expressions import RawSQL

from apps.accounts.models import Space, User
from apps.records.models import Record, RecordQuerySet, SuspectReason
from apps.records.selectors import present_reasons
from apps.reminders import usage as usage_mod

NEEDS_REVIEW = (Record.Freshness.DUE, Record.Freshness.STALE, Record.Freshness.SUSPECT)
# Records whose status means nobody relies on them any more: never nagged about.
RETIRED = (Record.Status.SUPERSEDED, Record.Status.REJECTED, Record.Status.DEPRECATED)
IMPACT_WEIGHT = {"high": 3, "medium": 2, "low": 1}
KIND_WEIGHT = {"guardrail": 3, "constraint": 2, "intent": 1, "decision": 2}
# Past this many matching records, SQL pre-sorts by impact x days and only the top ones are
# ranked in Python with their usage (so a space with 300,000 stale records stays cheap).
RANK_CANDIDATES = 500


@dataclass
class Item:
    """One record in a digest or queue, with why it is listed and how urgent it is."""

    record: Record
    reasons: list[SuspectReason]
    usage: int
    days_stale: int
    score: int
    overdue_days: int = 0  # days past the review date (0: not past it)
    links: dict[str, str] = field(default_factory=dict)

    @property
    def state(self) -> str:
        return self.record.freshness

    @property
    def orphaned(self) -> bool:
        return self.record.owner_user_id is None and self.record.owner_team_id is None


@dataclass
class SpaceGroup:
    """The listed items of one space, and how many records of that space qualified in all."""

    space: Space
    items: list[Item]
    total: int = 0
    assignees: list = field(default_factory=list)

    @property
    def more(self) -> int:
        return max(0, self.total - len(self.items))


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


def _open_reasons_prefetch() -> Prefetch:
    return Prefetch(
        "suspect_reasons",
        queryset=SuspectReason.objects.filter(resolved_at__isnull=True)
        .select_related("cause_record__space")
        .order_by("created_at"),
        to_attr="open_reasons",
    )


def listable(now: dt.datetime | None = None) -> RecordQuerySet:
    """Active records somebody still relies on, with their freshness derived at `now`."""
    return Record.objects.active().exclude(status__in=RETIRED).with_freshness(now)


def attention_qs(now: dt.datetime | None = None) -> RecordQuerySet:
    return listable(now).filter(live_freshness__in=NEEDS_REVIEW)


def sql_priority(now: dt.datetime) -> RawSQL:
    """impact weight x (1 + days in trouble), as `urgency` computes it without usage."""
    table = Record._meta.db_table
    reasons = SuspectReason._meta.db_table
    impact = " ".join(f"WHEN '{k}' THEN {v}" for k, v in IMPACT_WEIGHT.items())
    kind = " ".join(f"WHEN '{k}' THEN {v}" for k, v in KIND_WEIGHT.items())
    weight = (
        f"CASE WHEN {table}.kind = 'decision' AND {table}.impact <> '' "
        f"THEN (CASE {table}.impact {impact} ELSE 1 END) "
        f"ELSE (CASE {table}.kind {kind} ELSE 1 END) END"
    )
    # Trouble started at the review date (when passed) or with the oldest open reason.
    since = f"""LEAST(
        CASE WHEN {table}.next_review_at <= %s THEN {table}.next_review_at END,
        (SELECT min(s.created_at) FROM {reasons} s
         WHERE s.record_id = {table}.id AND s.resolved_at IS NULL))"""  # noqa: S608
    days = f"COALESCE(floor(extract(epoch FROM (%s - {since})) / 86400), 0)"
    return RawSQL(f"({weight}) * (1 + GREATEST(0, {days}))", [now, now])  # noqa: S611


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
                overdue_days=max(0, (now - record.next_review_at).days)
                if record.next_review_at <= now
                else 0,
            )
        )
    items.sort(key=sort_key)
    return items


# Urgency ranks the state first (suspect and stale records before ones merely coming due), then
# usage x impact x days within a state.
STATE_RANK: dict[str, int] = {
    Record.Freshness.SUSPECT: 0,
    Record.Freshness.STALE: 1,
    Record.Freshness.DUE: 2,
}


def sort_key(item: Item) -> tuple:
    return (
        STATE_RANK.get(item.state, 3),
        -item.score,
        item.record.next_review_at,
        item.record.key,
    )


def ranked(qs: QuerySet[Record], *, now: dt.datetime, limit: int, viewer: User) -> list[SpaceGroup]:
    """The `limit` most urgent records of `qs`, grouped by space (most urgent space first), each
    group knowing how many of its space's records qualified in all. Their reasons are worded
    for `viewer` (who reads the page or gets the email): see `present_reasons`."""
    totals = dict(
        qs.order_by().values("space_id").annotate(n=Count("id")).values_list("space_id", "n")
    )
    if not totals:
        return []
    records = qs.select_related("space", "owner_user", "owner_team").prefetch_related(
        _open_reasons_prefetch()
    )
    if sum(totals.values()) > RANK_CANDIDATES:
        state_rank = Case(
            *(When(live_freshness=state, then=Value(rank)) for state, rank in STATE_RANK.items()),
            default=Value(3),
        )
        records = records.annotate(state_rank=state_rank, priority=sql_priority(now)).order_by(
            "state_rank", "-priority", "pk"
        )[:RANK_CANDIDATES]
    items = _items(records, now=now)[:limit]
    present_reasons(viewer, [reason for item in items for reason in item.reasons])
    groups: dict[int, SpaceGroup] = {}
    for item in items:
        space = item.record.space
        groups.setdefault(space.pk, SpaceGroup(space, [], total=totals.get(space.pk, 0)))
        groups[space.pk].items.append(item)
    return sorted(groups.values(), key=lambda g: (sort_key(g.items[0]), g.space.name))


class DigestGroups(list):
    """The digest's space groups, plus the agents' proposals waiting for the same person
    (apps.agents); they count towards the total, so a digest with only proposals is sent."""

    proposals: list

    @property
    def record_count(self) -> int:
        return sum(g.total for g in self)

    @property
    def record_unlisted(self) -> int:
        return self.record_count - sum(len(g.items) for g in self)


def total_of(groups: list[SpaceGroup]) -> int:
    return sum(g.total for g in groups) + len(getattr(groups, "proposals", ()))
