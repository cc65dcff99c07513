"""Reads for digests, review queues and the health dashboard."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db import connection
from django.db.models import (
    Case,
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.utils import timezone

from apps.accounts.models import Membership, Space, Team, User
from apps.records import evidence
from apps.records.models import Record, RecordQuerySet, SuspectReason
from apps.records.selectors import present_reasons
from apps.reminders import usage as usage_mod
from apps.reminders.models import DriftReport, HealthSnapshot

NEEDS_REVIEW = (Record.Freshness.DUE, Record.Freshness.STALE, Record.Freshness.SUSPECT)
# Records whose status means nobody relies on them any more: never nagged about.
RETIRED = (Record.Status.SUPERSEDED, Record.Status.REJECTED, Record.Status.DEPRECATED)
IMPACT_WEIGHT = {"high": 3, "medium": 2, "low": 1}
KIND_WEIGHT = {"guardrail": 3, "constraint": 2, "intent": 1, "decision": 2}
TREND_DAYS = 84  # 12 weeks
# How many records one email or page lists; the rest are counted ("and 12 more").
DIGEST_LIMIT = 25
ESCALATION_LIMIT = 40
QUEUE_LIMIT = 100
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


def _listable(now: dt.datetime | None = None) -> RecordQuerySet:
    """Active records somebody still relies on, with their freshness derived at `now`."""
    return Record.objects.active().exclude(status__in=RETIRED).with_freshness(now)


def _attention_qs(now: dt.datetime | None = None) -> RecordQuerySet:
    return _listable(now).filter(live_freshness__in=NEEDS_REVIEW)


def _sql_priority(now: dt.datetime) -> RawSQL:
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


def _ranked(
    qs: QuerySet[Record], *, now: dt.datetime, limit: int, viewer: User
) -> list[SpaceGroup]:
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
        records = records.annotate(state_rank=state_rank, priority=_sql_priority(now)).order_by(
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


def _owned_by(user: User) -> Q:
    """Records the user owns, and records owned by a team they are in (team ids read first, so
    the two owner indexes serve the query instead of a scan)."""
    team_ids = list(user.teams.values_list("id", flat=True))
    if not team_ids:
        return Q(owner_user=user)
    return Q(owner_user=user) | Q(owner_team_id__in=team_ids)


def digest_items(
    *,
    user: User,
    now: dt.datetime | None = None,
    limit: int = DIGEST_LIMIT,
    with_proposals: bool = True,
) -> list[SpaceGroup]:
    """The owner's due, stale and suspect records (their own and their teams'), in spaces they
    are a member of, grouped by space, most urgent first."""
    now = now or timezone.now()
    member_of = Membership.objects.filter(user=user).values("space_id")
    records = _attention_qs(now).filter(_owned_by(user), space_id__in=member_of)
    groups = _ranked(records, now=now, limit=limit, viewer=user)
    if not with_proposals:
        return groups
    from apps.agents.selectors import proposals_to_review

    groups = DigestGroups(groups)
    groups.proposals = proposals_to_review(user=user, limit=limit, primary=True)
    return groups


def _escalation_qs(now: dt.datetime) -> RecordQuerySet:
    """Records that need review and nobody owns, or that have been stale or suspect for longer
    than their space's escalation period."""
    cutoff = ExpressionWrapper(
        Value(now) - F("space__escalation_days") * Value(dt.timedelta(days=1)),
        output_field=DateTimeField(),
    )
    old_reason = SuspectReason.objects.filter(
        record=OuterRef("pk"), resolved_at__isnull=True, created_at__lte=OuterRef("escalate_at")
    )
    return (
        _attention_qs(now)
        .annotate(escalate_at=cutoff)
        .filter(
            Q(owner_user__isnull=True, owner_team__isnull=True)
            | Q(next_review_at__lte=F("escalate_at"))
            | Exists(old_reason)
        )
    )


def escalation_items(
    *, user: User, now: dt.datetime | None = None, limit: int = ESCALATION_LIMIT
) -> list[SpaceGroup]:
    """For a space admin: records stale or suspect for longer than the space's escalation
    period, and orphaned records, in the spaces they administer."""
    now = now or timezone.now()
    admin_of = Membership.objects.filter(user=user, role=Membership.Role.ADMIN).values("space_id")
    return _ranked(
        _escalation_qs(now).filter(space_id__in=admin_of), now=now, limit=limit, viewer=user
    )


def users_with_digest_items(*, frequency: str, now: dt.datetime | None = None) -> list[int]:
    """Ids of active users with that digest frequency who own (themselves or through a team)
    something needing review in a space they are a member of.

    Set-based: the distinct (owner, space) pairs of the records needing review (a hash
    aggregate over one scan, at most users x spaces rows), then memberships and users."""
    attention = _attention_qs(now).order_by()
    pairs = set(
        attention.filter(owner_user__isnull=False)
        .values_list("owner_user_id", "space_id")
        .distinct()
    )
    pairs |= set(
        attention.filter(owner_team__isnull=False)
        .exclude(owner_team__members=None)
        .values_list("owner_team__members", "space_id")
        .distinct()
    )
    from apps.agents.selectors import users_with_pending_proposals

    reviewers = set(users_with_pending_proposals())  # agents' proposals to review
    if not pairs and not reviewers:
        return []
    user_ids = {user_id for user_id, _ in pairs}
    members = set(
        Membership.objects.filter(user_id__in=user_ids).values_list("user_id", "space_id")
    )
    owners = {user_id for user_id, space_id in pairs if (user_id, space_id) in members}
    owners |= reviewers
    return sorted(
        User.objects.filter(pk__in=owners, is_active=True, digest_frequency=frequency).values_list(
            "id", flat=True
        )
    )


# Deliveries that reached (or will reach) the inbox: empty and given-up rows sent nothing.
_COUNTS_AS_SENT = ("pending", "sending", "sent", "failed")


def without_recent_digest(*, user_ids: list[int], since: dt.datetime) -> list[int]:
    """`user_ids` minus those who got (or are about to get) a digest since `since`, whatever
    its frequency then: switching daily to weekly right after today's daily, or a week rolling
    over the day after a weekly one, must not send another one now (one query)."""
    if not user_ids:
        return []
    from apps.reminders.models import Delivery

    recent = set(
        Delivery.objects.filter(
            user_id__in=user_ids,
            kind=Delivery.Kind.DIGEST,
            status__in=_COUNTS_AS_SENT,
            created_at__gte=since,
        ).values_list("user_id", flat=True)
    )
    return [pk for pk in user_ids if pk not in recent]


def admins_with_escalations(*, now: dt.datetime | None = None) -> list[int]:
    """Active space admins (with digests not off) of spaces that have something to escalate
    (one query)."""
    now = now or timezone.now()
    escalated = _escalation_qs(now).filter(space_id=OuterRef("space_id"))
    return list(
        Membership.objects.filter(role=Membership.Role.ADMIN, user__is_active=True)
        .exclude(user__digest_frequency=User.DigestFrequency.OFF)
        .filter(Exists(escalated))
        .order_by("user_id")
        .values_list("user_id", flat=True)
        .distinct()
    )


def _assignees(space_ids) -> dict[int, list[User]]:
    """Active members of each space, the people a record there can be handed to."""
    by_space: dict[int, list[User]] = defaultdict(list)
    memberships = (
        Membership.objects.filter(space_id__in=space_ids, user__is_active=True)
        .select_related("user")
        .order_by("user__first_name", "user__last_name", "user__username")
    )
    for membership in memberships:
        by_space[membership.space_id].append(membership.user)
    return by_space


def review_queue(*, user: User, now: dt.datetime | None = None) -> dict:
    """What `user` should verify next, and (for space admins) the records nobody owns, which
    they should hand to someone."""
    now = now or timezone.now()
    mine = digest_items(user=user, now=now, limit=QUEUE_LIMIT, with_proposals=False)
    admin_of = list(
        Membership.objects.filter(user=user, role=Membership.Role.ADMIN).values_list(
            "space_id", flat=True
        )
    )
    orphans: list[SpaceGroup] = []
    if admin_of:
        unowned = _listable(now).filter(
            space_id__in=admin_of, owner_user__isnull=True, owner_team__isnull=True
        )
        orphans = _ranked(unowned, now=now, limit=QUEUE_LIMIT, viewer=user)
        people = _assignees([g.space.pk for g in orphans])
        for group in orphans:
            group.assignees = people.get(group.space.pk, [])
    return {
        "mine": mine,
        "orphans": orphans,
        "count": total_of(mine),
        "orphan_count": total_of(orphans),
        "proposals": _proposals_for(user),
    }


def _proposals_for(user: User) -> list:
    from apps.agents.selectors import proposals_to_review

    return proposals_to_review(user=user, limit=QUEUE_LIMIT)


# --- health dashboard ---------------------------------------------------------------------------

ORPHANS_SHOWN = 50
OWNERS_SHOWN = 20
MOST_USED_SHOWN = 10


def _trend(space_ids, *, today: dt.date) -> list[dict]:
    start = today - dt.timedelta(days=TREND_DAYS - 1)
    rows = (
        HealthSnapshot.objects.filter(space_id__in=space_ids, day__gte=start, day__lte=today)
        .values("day")
        .annotate(fresh=Sum("fresh"), due=Sum("due"), stale=Sum("stale"), suspect=Sum("suspect"))
        .order_by("day")
    )
    return [dict(row) for row in rows]


def _by_owner(attention: RecordQuerySet) -> list[dict]:
    """Stale and suspect records per owning user and per owning team, most first."""
    counts = {
        "stale": Count("id", filter=Q(live_freshness=Record.Freshness.STALE)),
        "suspect": Count("id", filter=Q(live_freshness=Record.Freshness.SUSPECT)),
        "total": Count("id"),
    }
    rows: list[dict[str, Any]] = []
    for row in (
        attention.filter(owner_user__isnull=False)
        .values("owner_user_id")
        .annotate(**counts)
        .order_by("-total", "owner_user_id")[:OWNERS_SHOWN]
    ):
        rows.append({**row, "filter": f"u:{row['owner_user_id']}"})
    for row in (
        attention.filter(owner_team__isnull=False)
        .values("owner_team_id")
        .annotate(**counts)
        .order_by("-total", "owner_team_id")[:OWNERS_SHOWN]
    ):
        rows.append({**row, "filter": f"t:{row['owner_team_id']}"})
    users = User.objects.in_bulk([r["owner_user_id"] for r in rows if r.get("owner_user_id")])
    teams = Team.objects.in_bulk([r["owner_team_id"] for r in rows if r.get("owner_team_id")])
    for row in rows:
        if row.get("owner_user_id"):
            user = users.get(row["owner_user_id"])
            row["label"] = user.display_name if user else "?"
            row["username"] = user.username if user else ""
            row["is_team"] = False
        else:
            team = teams.get(row["owner_team_id"])
            row["label"] = team.name if team else "?"
            row["is_team"] = True
    rows.sort(key=lambda r: (-r["total"], r["label"].lower()))
    return rows[:OWNERS_SHOWN]


def health(*, spaces: QuerySet[Space], now: dt.datetime | None = None, coverage: bool) -> dict:
    """Everything the health dashboard shows for a set of spaces (a constant number of queries,
    whatever the number of records)."""
    now = now or timezone.now()
    space_ids = list(spaces.values_list("id", flat=True))
    records = Record.objects.active().filter(space_id__in=space_ids).with_freshness(now)
    counts = {
        row["live_freshness"]: row["n"]
        for row in records.order_by().values("live_freshness").annotate(n=Count("id"))
    }
    total = sum(counts.values())
    shares = []
    for state, label in Record.Freshness.choices:
        n = counts.get(state, 0)
        shares.append(
            {
                "state": state,
                "label": label,
                "count": n,
                "percent": round(100 * n / total) if total else 0,
                "share": 100 * n / total if total else 0,
            }
        )
    attention = records.filter(
        live_freshness__in=(Record.Freshness.STALE, Record.Freshness.SUSPECT)
    ).exclude(status__in=RETIRED)
    unowned = (
        records.filter(owner_user__isnull=True, owner_team__isnull=True)
        .exclude(status__in=RETIRED)
        .select_related("space")
    )
    orphaned = list(unowned.order_by("space__name", "kind", "number")[:ORPHANS_SHOWN])
    orphaned_total = len(orphaned) if len(orphaned) < ORPHANS_SHOWN else unowned.order_by().count()
    used = usage_mod.most_used(attention.exclude(status__in=RETIRED), limit=MOST_USED_SHOWN)
    stale_by_id = attention.select_related("space", "owner_user", "owner_team").in_bulk(list(used))
    most_used = []
    for pk, uses in used.items():
        record = stale_by_id.get(pk)
        if record is not None:
            record.usage = uses
            most_used.append(record)
    uncovered = None
    if coverage:
        uncovered = uncovered_paths(since=now - dt.timedelta(days=90), space_ids=space_ids)
    return {
        "total": total,
        "shares": shares,
        "trend": _trend(space_ids, today=timezone.localdate(now)),
        "by_owner": _by_owner(attention),
        "orphaned": orphaned,
        "orphaned_total": orphaned_total,
        "most_used_stale": most_used,
        "uncovered": uncovered,
        "gaps": usage_mod.open_gaps(space_ids=space_ids),
    }


def uncovered_paths(*, since: dt.datetime, space_ids: list[int], limit: int = 30) -> list[dict]:
    """Changed paths from recent drift reports that no record is anchored to, most changed first,
    from reports that reached every space (webhooks, the command) or one of `space_ids` (a
    token's report is not shown to people outside its spaces).

    Counted in SQL; paths that a record has been anchored to since the report are left out."""
    table = DriftReport._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT path, count(*) AS changes, max(created_at) AS last_changed,
                   min(created_at) AS first_changed
            FROM {table}, unnest(unmatched_paths) AS path
            WHERE created_at >= %s AND (space_ids IS NULL OR space_ids && %s::bigint[])
            GROUP BY path ORDER BY changes DESC, path LIMIT %s
            """,  # noqa: S608 - table name is ours, values are parameters
            [since, list(space_ids), limit * 3],
        )
        rows = cursor.fetchall()
    if not rows:
        return []
    # A path no record matched when it was reported can only be covered since by a record
    # created or edited after that report: only those are checked (an index range, not a scan).
    covered = evidence.covered_paths(
        [row[0] for row in rows], changed_since=min(row[3] for row in rows)
    )
    return [
        {"path": p, "changes": n, "last_changed": last}
        for p, n, last, _first in rows
        if p not in covered
    ][:limit]
