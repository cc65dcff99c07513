"""The staleness engine's set-based writes: the sweep (time-based evidence and cached
freshness), a space's review policy, and the daily health snapshots."""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.db.models import Max
from django.utils import timezone

from apps.accounts import access
from apps.accounts.models import Space
from apps.core.errors import Forbidden, InvalidInput, NotFound
from apps.records import evidence, policy
from apps.records.models import Record
from apps.reminders.models import HealthSnapshot

# Time-based states change when `now` crosses a record's review date or the start of its due
# window. The hourly sweep looks only at records whose review date lies in that band (plus this
# much slack for missed runs); the nightly full sweep recomputes everything.
SWEEP_LOOKBACK = dt.timedelta(days=2)


def sweep(*, now: dt.datetime | None = None, full: bool = False) -> dict[str, int]:
    """Raise time-based evidence and recompute freshness, set-based (no per-record Python).

    Hourly (`full=False`), every statement is driven by an index: valid-until reasons, records
    of deactivated owners, and the records whose review date is near `now`. The nightly full
    sweep also orphans records of owners who are no longer members and recomputes every
    record's state in one scan, as a safety net. Changed rows are updated by primary key, only
    where the state is still the one the scan saw (a record verified meanwhile is left alone)."""
    now = now or timezone.now()
    with transaction.atomic():
        expired = evidence.valid_until_passed(now=now)
        if full:
            orphaned = evidence.orphan_inactive_owners(now=now)
        else:
            orphaned = evidence.orphan_deactivated_owners(now=now)
    ids, old, new = _changed_states(now=now, window_only=not full)
    changed = 0
    if ids:
        record_table = Record._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {record_table} r SET freshness = c.state
                FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS c(id, old, state)
                WHERE r.id = c.id AND r.freshness = c.old
                """,  # noqa: S608 - table name is ours, values are parameters
                [ids, old, new],
            )
            changed = cursor.rowcount
    return {"valid_until": expired, "orphaned": orphaned, "changed": changed}


def _changed_states(*, now: dt.datetime, space_id: int | None = None, window_only: bool = False):
    """(ids, old states, new states) of the records whose freshness is out of date.

    `window_only`: only records whose review date is within [now - lookback, now + the largest
    due window] (an index range scan); otherwise every record (one sequential scan with hash
    joins against spaces and open reasons)."""
    record_table = Record._meta.db_table
    params: list
    state_sql, params = policy.freshness_sql("r", now=now)  # type: ignore[assignment]  # a list unless named=True
    filters = ""
    if space_id is not None:
        filters += " AND r.space_id = %s"
        params.append(space_id)
    if window_only:
        widest = Space.objects.aggregate(m=Max("due_window_days"))["m"] or 0
        # The review date crossing `now` or the start of the due window, or the valid-until
        # date passing (records with one are few, and indexed).
        filters += (
            " AND ((r.next_review_at > %s AND r.next_review_at <= %s)"
            " OR (r.valid_until IS NOT NULL AND r.valid_until >= %s))"
        )
        params += [
            now - SWEEP_LOOKBACK,
            now + dt.timedelta(days=widest),
            timezone.localdate(now) - SWEEP_LOOKBACK,
        ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT id, old, state FROM (
                SELECT r.id, r.freshness AS old, {state_sql} AS state
                FROM {record_table} r
                WHERE r.archived_at IS NULL {filters}
            ) x
            WHERE x.state <> x.old
            """,  # noqa: S608
            params,
        )
        rows = cursor.fetchall()
    return [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]


@transaction.atomic
def space_policy_update(
    *,
    space: Space,
    actor,
    intervals: dict,
    due_window_days: int,
    escalation_days: int,
    now: dt.datetime | None = None,
) -> Space:
    """Change a space's review intervals (admins only) and re-date its records from their last
    verification (or creation) under the new policy, in one UPDATE."""
    if not access.can_view(actor, space):
        raise NotFound(f"Space {space.slug!r} not found.")
    if not access.can_admin(actor, space):
        raise Forbidden(f"Only admins of {space.name} can change its review policy.")
    errors: dict[str, list[str]] = {}
    try:
        overrides = policy.clean_overrides(intervals)
    except ValueError as exc:
        errors["intervals"] = [str(exc)]
        overrides = {}
    for name, value, top in (
        ("due_window_days", due_window_days, 365),
        ("escalation_days", escalation_days, 3650),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            errors[name] = [f"A whole number of days between 0 and {top}."]
    if errors:
        raise InvalidInput("The review policy is not valid.", details=errors)
    now = now or timezone.now()
    space = Space.objects.select_for_update().get(pk=space.pk)
    space.review_policy = overrides
    space.due_window_days = due_window_days
    space.escalation_days = escalation_days
    space.save(update_fields=["review_policy", "due_window_days", "escalation_days"])
    days_sql, params = policy.interval_days_sql(overrides, alias="r")
    record_table = Record._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {record_table} r
            SET next_review_at = COALESCE(r.last_verified_at, r.created_at)
                                 + make_interval(days => {days_sql})
            WHERE r.space_id = %s AND r.archived_at IS NULL
            """,  # noqa: S608
            [*params, space.pk],
        )
        ids, _old, new = _changed_states(now=now, space_id=space.pk)
        cursor.execute(
            f"""
            UPDATE {record_table} r SET freshness = c.state
            FROM unnest(%s::bigint[], %s::text[]) AS c(id, state) WHERE r.id = c.id
            """,  # noqa: S608
            [ids, new],
        )
    return space


def snapshot_health(*, day: dt.date | None = None) -> int:
    """Store today's freshness counts of every space (one INSERT … SELECT, upserted)."""
    day = day or timezone.localdate()
    record_table = Record._meta.db_table
    table = HealthSnapshot._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (space_id, day, fresh, due, stale, suspect, orphaned)
            SELECT s.id, %s,
                count(r.id) FILTER (WHERE r.freshness IN ('fresh', 'unverified')),
                count(r.id) FILTER (WHERE r.freshness = 'due'),
                count(r.id) FILTER (WHERE r.freshness = 'stale'),
                count(r.id) FILTER (WHERE r.freshness = 'suspect'),
                count(r.id) FILTER (WHERE r.owner_user_id IS NULL AND r.owner_team_id IS NULL)
            FROM {Space._meta.db_table} s
            LEFT JOIN {record_table} r ON r.space_id = s.id AND r.archived_at IS NULL
            GROUP BY s.id
            ON CONFLICT (space_id, day) DO UPDATE SET
                fresh = EXCLUDED.fresh, due = EXCLUDED.due, stale = EXCLUDED.stale,
                suspect = EXCLUDED.suspect, orphaned = EXCLUDED.orphaned
            """,  # noqa: S608
            [day],
        )
        return cursor.rowcount
