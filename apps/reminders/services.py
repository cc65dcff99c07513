"""Writes of the staleness engine: the sweep, drift reports, policy changes, one-click actions,
digest deliveries (claimed exactly once) and daily health snapshots."""

from __future__ import annotations

import datetime as dt
import logging
import re
from email.utils import parseaddr

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max
from django.utils import timezone

from apps.accounts import access
from apps.accounts.models import Membership, Space, User
from apps.core.errors import Forbidden, InvalidInput, NotFound
from apps.records import evidence, policy
from apps.records import services as record_services
from apps.records.models import Record, Verification
from apps.reminders.models import Delivery, DriftReport, HealthSnapshot, UsedLink

log = logging.getLogger(__name__)

MAX_CHANGED_PATHS = 10_000
MAX_PATH_CHARS = 1_000
_COMMIT_RE = re.compile(r"^[0-9A-Za-z._/-]{0,64}$")


# --- the sweep --------------------------------------------------------------------------------


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


# --- policy -----------------------------------------------------------------------------------


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


# --- drift ------------------------------------------------------------------------------------


def _clean_paths(changed_paths) -> list[str]:
    if not isinstance(changed_paths, list | tuple):
        raise InvalidInput(
            "changed_paths must be a list of file paths.",
            details={"changed_paths": ["Not a list."]},
        )
    if len(changed_paths) > MAX_CHANGED_PATHS:
        raise InvalidInput(
            f"At most {MAX_CHANGED_PATHS:,} changed paths per report.",
            details={"changed_paths": ["Too many paths."]},
        )
    from apps.records.anchors import normalise_path

    paths: list[str] = []
    for value in changed_paths:
        if not isinstance(value, str) or "\x00" in value or len(value) > MAX_PATH_CHARS:
            raise InvalidInput(
                f"Each changed path must be text of at most {MAX_PATH_CHARS} characters.",
                details={"changed_paths": [f"Invalid path: {str(value)[:60]!r}"]},
            )
        path = normalise_path(value)
        if path and path not in paths:
            paths.append(path)
    return paths


def drift_report(
    *,
    repository: str,
    commit: str,
    changed_paths,
    source: str,
    actor=None,
    compare_url: str = "",
    now: dt.datetime | None = None,
) -> tuple[DriftReport, bool]:
    """Records anchored to the changed paths become suspect. Returns (report, created).

    `actor` None means a trusted caller (webhook with the shared secret, the management
    command): every space. An API token marks records only in spaces it may edit. The same
    (repository, commit) reported twice changes nothing the second time."""
    errors: dict[str, list[str]] = {}
    if not isinstance(repository, str) or not repository.strip() or len(repository) > 300:
        errors["repository"] = ["A repository name of at most 300 characters is required."]
    if not isinstance(commit, str) or not _COMMIT_RE.match(commit or ""):
        errors["commit"] = ["A commit id (letters, digits, at most 64 characters)."]
    if errors:
        raise InvalidInput("The drift report is not valid.", details=errors)
    paths = _clean_paths(changed_paths)
    repository = repository.strip()
    now = now or timezone.now()
    space_ids = None
    if actor is not None:
        user = access.user_of(actor)
        if user is None:
            raise Forbidden("Authentication is required.")
        if not getattr(actor, "can_write", True):
            raise Forbidden("Reporting drift needs a read-write token.")
        visible = Space.objects.visible_to(actor).values_list("id", flat=True)
        roles = Membership.objects.filter(user=user, space_id__in=visible)
        if not user.is_superuser:
            roles = roles.filter(role__in=[Membership.Role.EDITOR, Membership.Role.ADMIN])
            space_ids = list(roles.values_list("space_id", flat=True))
            if not space_ids:
                # Marking records suspect changes them: viewers (and read tokens) may not.
                raise Forbidden("Reporting drift needs edit rights in at least one space.")
    with transaction.atomic():
        if commit:
            existing = (
                DriftReport.objects.select_for_update()
                .filter(repository=repository, commit=commit)
                .first()
            )
            if existing is not None:
                return _drift_widen(existing, space_ids=space_ids, now=now)
        try:
            with transaction.atomic():
                report = DriftReport.objects.create(
                    repository=repository,
                    commit=commit,
                    source=source,
                    changed_paths=paths,
                    space_ids=space_ids,
                    compare_url=compare_url[:500] if compare_url else "",
                    created_at=now,
                )
        except IntegrityError:
            # A concurrent delivery of the same push won the race: widen it if we reach further.
            existing = DriftReport.objects.select_for_update().get(
                repository=repository, commit=commit
            )
            return _drift_widen(existing, space_ids=space_ids, now=now)
        marked, unmatched = evidence.code_changed(
            repository=repository,
            commit=commit,
            paths=paths,
            now=now,
            space_ids=space_ids,
            cause_url=compare_url,
        )
        report.suspect_count = marked
        report.unmatched_paths = unmatched
        report.save(update_fields=["suspect_count", "unmatched_paths"])
    return report, True


def _drift_widen(
    report: DriftReport, *, space_ids: list[int] | None, now: dt.datetime
) -> tuple[DriftReport, bool]:
    """The same commit reported again. Nothing changes for spaces the first report reached, but
    a report that reaches further (a webhook after a space-scoped token, or a token for other
    spaces) marks records in the spaces not reached yet: a token for one space must not stop
    the organisation's webhook from reaching the others."""
    if report.space_ids is None:
        return report, False
    reached = set(report.space_ids)
    if space_ids is None:
        new_spaces = list(Space.objects.exclude(id__in=reached).values_list("id", flat=True))
    else:
        new_spaces = sorted(set(space_ids) - reached)
    if not new_spaces and space_ids is not None:
        return report, False
    marked, _ = evidence.code_changed(
        repository=report.repository,
        commit=report.commit,
        paths=list(report.changed_paths),
        now=now,
        space_ids=new_spaces,
        cause_url=report.compare_url,
    )
    report.suspect_count += marked
    report.space_ids = None if space_ids is None else sorted(reached | set(new_spaces))
    report.save(update_fields=["suspect_count", "space_ids"])
    return report, True


# --- one-click actions ------------------------------------------------------------------------


def use_link(*, nonce: str, action: str, record_id: int | None, user: User | None) -> bool:
    """Claim a single-use link; False when it was used before."""
    try:
        with transaction.atomic():
            UsedLink.objects.create(nonce=nonce, action=action, record_id=record_id, user=user)
    except IntegrityError:
        return False
    return True


@transaction.atomic
def link_still_true(
    *, record: Record, user: User, nonce: str, valid_until=None
) -> Verification | None:
    """ "Still true" from an email: verify as `user`. None when the link was used before.
    `valid_until`: the new date when the record's valid-until date has passed (see
    `record_verify`); a refused verification leaves the link unused."""
    if not use_link(nonce=nonce, action="verify", record_id=record.pk, user=user):
        return None
    return record_services.record_verify(
        record=record,
        actor=user,
        note="Still true (from the reminder email)",
        valid_until=valid_until,
    )


@transaction.atomic
def link_not_mine(*, record: Record, user: User, nonce: str) -> bool | None:
    """ "Not mine" from an email. None when the link was used before; else as `not_mine`."""
    if not use_link(nonce=nonce, action="not_mine", record_id=record.pk, user=user):
        return None
    return not_mine(record=record, user=user)


@transaction.atomic
def not_mine(*, record: Record, user: User) -> bool:
    """The owner hands the record back to the space admins. False when `user` does not own it
    (any more): nothing changes."""
    count = evidence.orphan_record(
        record=record,
        user=user,
        now=timezone.now(),
        message=f"{user.username} said it is not theirs; the space admins should reassign it",
    )
    return count > 0


def unsubscribe(*, user: User) -> User:
    """Stop all digest emails for `user` (they can turn them back on in their settings)."""
    User.objects.filter(pk=user.pk).update(digest_frequency=User.DigestFrequency.OFF)
    user.digest_frequency = User.DigestFrequency.OFF
    return user


def digest_frequency_set(*, user: User, frequency: str) -> User:
    if frequency not in User.DigestFrequency.values:
        raise InvalidInput(
            f"Use one of {', '.join(User.DigestFrequency.values)}.",
            details={"digest_frequency": ["Invalid choice."]},
        )
    User.objects.filter(pk=user.pk).update(digest_frequency=frequency)
    user.digest_frequency = frequency
    return user


# --- deliveries -------------------------------------------------------------------------------


def delivery_plan(*, user_ids: list[int], kind: str, period: str) -> list[int]:
    """Create the (user, kind, period) email rows that do not exist yet; returns the new rows'
    ids (chat rows: apps.chat.services.plan).

    The unique constraint makes this safe under two beat processes: only one INSERT wins."""
    if not user_ids:
        return []
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {table} (user_id, kind, period, channel, payload, status, attempts,
                                 item_count, last_error, message_id, created_at)
            SELECT u, %s, %s, 'email', '{{}}'::jsonb, 'pending', 0, 0, '', '', %s
            FROM unnest(%s::bigint[]) AS u
            ON CONFLICT (user_id, kind, period) WHERE channel = 'email' DO NOTHING
            RETURNING id
            """,  # noqa: S608
            [kind, period, timezone.now(), user_ids],
        )
        return [row[0] for row in cursor.fetchall()]


def delivery_message_id(*, delivery: Delivery) -> str:
    """The Message-ID of every send of this delivery: derived from the row, so a second attempt
    after a killed worker carries the same id and mail systems can drop a duplicate."""
    _, address = parseaddr(settings.REMINDERS_FROM_EMAIL)
    domain = address.rpartition("@")[2] or "localhost"
    return (
        f"<contextkb.{delivery.kind}.{delivery.period}.u{delivery.user_id}.d{delivery.pk}@{domain}>"
    )


def delivery_claim(*, delivery_id: int) -> Delivery | None:
    """Take a delivery for sending with one conditional UPDATE: pending or failed → sending.

    Whoever gets the row sends it; a second worker, a redelivered task or a retry after a
    successful send gets None. A worker killed mid-send leaves the row `sending` until its lease
    runs out; then `delivery_reclaim_stuck` makes it pending again (see there)."""
    now = timezone.now()
    claimed = Delivery.objects.filter(
        pk=delivery_id, status__in=[Delivery.Status.PENDING, Delivery.Status.FAILED]
    ).update(status=Delivery.Status.SENDING, claimed_at=now, attempts=F("attempts") + 1)
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("user").get(pk=delivery_id)
    message_id = delivery_message_id(delivery=delivery)
    if delivery.message_id != message_id:
        # Stored before the send, so the admin (and a test) can see which id is on the wire.
        Delivery.objects.filter(pk=delivery_id).update(message_id=message_id)
        delivery.message_id = message_id
    return delivery


def delivery_reclaim_stuck(*, periods: list[str], now: dt.datetime | None = None) -> list[int]:
    """Make deliveries of `periods` (and chat notices) that have been `sending` longer than the
    lease pending again.

    Such a row was claimed by a worker that died (SIGKILL, OOM, host loss) before it could
    finish: the lease (REMINDERS_SEND_LEASE_SECONDS) is longer than Celery's hard time limit, so
    no live send can still hold it. One conditional UPDATE per run: when two planners race, the
    second one re-checks the row after the first committed, finds it no longer `sending` past
    its lease, and takes nothing. The pending row is then claimed by exactly one send task.

    Residual risk: if the dead worker's message had already been accepted by the SMTP server,
    the owner gets a second copy — with the same Message-ID, which most mail systems drop."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(seconds=settings.REMINDERS_SEND_LEASE_SECONDS)
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table}
               SET status = 'pending',
                   last_error = 'Re-queued: the worker that claimed it at '
                                || to_char(claimed_at AT TIME ZONE 'UTC',
                                           'YYYY-MM-DD HH24:MI:SS')
                                || ' UTC did not finish within the lease.'
             WHERE status = 'sending' AND claimed_at < %s
               AND (period = ANY(%s) OR kind = 'notice')
            RETURNING id
            """,  # noqa: S608
            [cutoff, periods],
        )
        ids = [row[0] for row in cursor.fetchall()]
    if ids:
        log.warning("Re-queued %d digest deliveries stuck in 'sending': %s", len(ids), ids)
    return ids


def delivery_retry(*, ids: list[int]) -> list[int]:
    """Make failed (or given-up) deliveries pending again, for an admin's "send again"; returns
    the ids that were. One conditional UPDATE: rows sent, sending or empty are left alone, so
    this never sends a digest twice."""
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} SET status = 'pending'
            WHERE id = ANY(%s) AND status IN ('failed', 'gave_up')
            RETURNING id
            """,  # noqa: S608 - table name is ours, values are parameters
            [list(ids)],
        )
        return sorted(row[0] for row in cursor.fetchall())


def delivery_finish(
    *, delivery: Delivery, status: str, item_count: int = 0, error: str = "", message_id: str = ""
) -> None:
    fields = {"status": status, "item_count": item_count, "last_error": error[:5000]}
    if status == Delivery.Status.SENT:
        fields["sent_at"] = timezone.now()
        fields["message_id"] = message_id[:300]
    Delivery.objects.filter(pk=delivery.pk).update(**fields)


# --- snapshots --------------------------------------------------------------------------------


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
