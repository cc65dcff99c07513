"""Reads for the health dashboard: freshness shares, the trend, stale records by owner,
orphans, the most used stale records, uncovered paths and gaps."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from apps.accounts.models import Space, Team, User
from apps.records import evidence
from apps.records.models import Record, RecordQuerySet
from apps.reminders import usage as usage_mod
from apps.reminders.models import DriftReport, HealthSnapshot
from apps.reminders.selectors.ranking import RETIRED

TREND_DAYS = 84  # 12 weeks
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
    for owner, prefix in (("owner_user", "u"), ("owner_team", "t")):
        column = f"{owner}_id"
        for row in (
            attention.filter(**{f"{owner}__isnull": False})
            .values(column)
            .annotate(**counts)
            .order_by("-total", column)[:OWNERS_SHOWN]
        ):
            rows.append({**row, "filter": f"{prefix}:{row[column]}"})
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
