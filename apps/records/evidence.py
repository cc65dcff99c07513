"""Staleness evidence: the reasons a record may no longer hold.

Four sources, each leaving open `SuspectReason` rows (what, when, a link to the cause) and
setting the record's freshness to `suspect` until it is verified or edited:

1. a record it leans on changed: R depends_on X, R implements X, or X constrains R, and X was
   materially edited, deprecated, superseded or archived (`linked_record_changed`, raised by the
   record services);
2. code under its anchors changed (`code_changed`, raised by drift reports);
3. its `valid_until` date passed (`valid_until_passed`, raised by the hourly sweep);
4. its owner was deactivated or left the space (`orphan_owned_by` / `orphan_inactive_owners`):
   the owner is cleared, so the record lands in the space admins' queue; giving it an owner
   again resolves that reason (`owner_assigned`).

Everything here is set-based: a few SQL statements whatever the number of records.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.db.models import F, Q

from apps.records.models import Link, Record, SuspectReason
from apps.records.revisions import write_revision

LEANS_ON = (Link.Type.DEPENDS_ON, Link.Type.IMPLEMENTS)
MAX_PATHS_IN_REASON = 20


def dependents_of(record: Record):
    """Records that lean on `record` (not archived)."""
    return (
        Record.objects.filter(archived_at__isnull=True)
        .filter(
            Q(outgoing_links__target=record, outgoing_links__type__in=LEANS_ON)
            | Q(incoming_links__source=record, incoming_links__type=Link.Type.CONSTRAINS)
        )
        .exclude(pk=record.pk)
        .distinct()
    )


def linked_record_changed(
    record: Record,
    *,
    why: str,
    now: dt.datetime,
    by: Record | None = None,
    revision_number: int | None = None,
) -> int:
    """Mark every dependent of `record` suspect; returns how many records got a new reason.
    `by` is the successor when `record` was superseded (`why` then reads "was superseded").
    With `revision_number` (an edit), the reason links to that revision's diff, so whoever
    checks the dependent sees what changed rather than just the record as it is now.

    The dependent may live in another space than `record` (or `by`): besides the message, each
    reason keeps references (cause_record, details "subject", "why", "by") from which
    `records.selectors.reason_text` rebuilds it for a viewer who cannot see those records."""
    dependents = list(dependents_of(record).values_list("pk", flat=True))
    if not dependents:
        return 0
    url = record.get_absolute_url()
    if revision_number is not None and revision_number > 1:
        url = record.get_diff_url(number=revision_number)
    subject = f"{record.key} {record.title!r}"
    details = {
        "key": record.key,
        "version": record.version,
        "status": record.status,
        "subject": subject,
        "why": why,
    }
    message = f"{subject} {why}"
    if by is not None:
        details.update({"by": by.pk, "by_key": by.key})
        message = f"{message} by {by.key}"
    reasons = [
        SuspectReason(
            record_id=pk,
            cause=SuspectReason.Cause.LINKED_RECORD_CHANGED,
            message=message[:500],
            cause_record=record,
            cause_url=url,
            details=details,
            created_at=now,
        )
        for pk in dependents
    ]
    SuspectReason.objects.bulk_create(reasons)
    Record.objects.filter(pk__in=dependents).update(freshness=Record.Freshness.SUSPECT)
    return len(reasons)


def status_change_reason(old_status: str, new_status: str) -> str:
    """How a dependent's reason describes the edit of the record it leans on."""
    if new_status != old_status and new_status in (
        Record.Status.DEPRECATED,
        Record.Status.REJECTED,
    ):
        return f"was {Record.Status(new_status).label.lower()}"
    return "was edited"


def _patterns_matching(
    paths: list[str], *, changed_since: dt.datetime | None = None
) -> dict[str, list[str]]:
    """{anchor pattern: [changed paths it matches]} over the distinct patterns in use (of records
    changed since `changed_since`, when given).

    Matching each path against the few thousand distinct patterns, rather than against every
    record's anchors, keeps a drift report fast however many records share an anchor."""
    record_table = Record._meta.db_table
    since_sql = ""
    params: list = [paths]
    if changed_since is not None:
        since_sql = "AND updated_at >= %s"
        params = [changed_since, paths]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT pats.pat, array_agg(p.path ORDER BY p.path)
            FROM (SELECT DISTINCT unnest(anchor_patterns) AS pat FROM {record_table}
                  WHERE archived_at IS NULL AND anchor_patterns <> '{{}}' {since_sql}) AS pats
            JOIN unnest(%s::text[]) AS p(path) ON p.path ~ pats.pat
            GROUP BY pats.pat
            """,  # noqa: S608 - table name is ours, values are parameters
            params,
        )
        return dict(cursor.fetchall())


def anchored_records(paths: list[str]):
    """The active records `code_changed` would mark for these (normalised) paths: the same
    matcher, for a dry run that must agree with the real one."""
    hits = _patterns_matching(paths) if paths else {}
    if not hits:
        return Record.objects.none()
    return Record.objects.active().filter(anchor_patterns__overlap=list(hits))


def covered_paths(paths: list[str], *, changed_since: dt.datetime | None = None) -> set[str]:
    """The paths at least one active record is anchored to now; with `changed_since`, only
    records created or edited since then are looked at (the cheap check for paths that were
    not covered at that time)."""
    if not paths:
        return set()
    matching = _patterns_matching(paths, changed_since=changed_since)
    return {path for matched in matching.values() for path in matched}


def code_changed(
    *,
    repository: str,
    commit: str,
    paths: list[str],
    now: dt.datetime,
    space_ids=None,
    cause_url: str = "",
) -> tuple[int, list[str]]:
    """Records anchored to any of `paths` become suspect (one reason per record, naming the paths
    that matched). Returns (records marked, paths no record is anchored to)."""
    if not paths:
        return 0, []
    hits = _patterns_matching(paths)
    covered = {path for matched in hits.values() for path in matched}
    unmatched = sorted(p for p in paths if p not in covered)
    if not hits:
        return 0, unmatched
    pairs = [(pat, path) for pat, matched in hits.items() for path in matched]
    short = commit[:12] or "an unknown commit"
    params: list = [[p for p, _ in pairs], [path for _, path in pairs], list(hits)]
    if space_ids is not None:
        params.append(list(space_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            _code_changed_sql(in_spaces=space_ids is not None),
            [
                *params,
                SuspectReason.Cause.CODE_CHANGED,
                f"Code under its anchors changed in {repository}@{short}: ",
                cause_url[:500],
                repository,
                commit,
                now,
            ],
        )
        marked = cursor.rowcount
    return marked, unmatched


def _code_changed_sql(*, in_spaces: bool) -> str:
    """One statement for `code_changed`: the records whose anchor patterns are among the
    matched ones (of the given spaces, when `in_spaces`) get a reason naming their matched
    paths, and become suspect."""
    record_table = Record._meta.db_table
    reason_table = SuspectReason._meta.db_table
    space_filter = "AND r.space_id = ANY(%s)" if in_spaces else ""
    return f"""
            WITH pp AS (SELECT * FROM unnest(%s::text[], %s::text[]) AS pp(pat, path)),
            hits AS (
                SELECT r.id, array_agg(DISTINCT pp.path ORDER BY pp.path) AS matched
                FROM {record_table} r
                CROSS JOIN LATERAL unnest(r.anchor_patterns) AS rp(pat)
                JOIN pp ON pp.pat = rp.pat
                WHERE r.anchor_patterns && %s::text[] AND r.archived_at IS NULL {space_filter}
                GROUP BY r.id
            ), reasons AS (
                INSERT INTO {reason_table}
                    (record_id, cause, message, cause_url, details, created_at)
                SELECT id, %s,
                    left(%s || array_to_string(matched[1:3], ', ')
                         || CASE WHEN cardinality(matched) > 3
                                 THEN ' and ' || (cardinality(matched) - 3) || ' more' ELSE '' END,
                         500),
                    %s,
                    jsonb_build_object('repository', %s::text, 'commit', %s::text,
                                       'paths', to_jsonb(matched[1:{MAX_PATHS_IN_REASON}])),
                    %s
                FROM hits
                RETURNING record_id
            )
            UPDATE {record_table} SET freshness = 'suspect'
            WHERE id IN (SELECT record_id FROM reasons)
            """  # noqa: S608 - table names are ours, values are parameters


def valid_until_passed(*, now: dt.datetime) -> int:
    """Records whose valid-until date is before today get one open reason (once)."""
    record_table = Record._meta.db_table
    reason_table = SuspectReason._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH reasons AS (
                INSERT INTO {reason_table}
                    (record_id, cause, message, cause_url, details, created_at)
                SELECT r.id, %s, 'Its valid-until date ' || to_char(r.valid_until, 'YYYY-MM-DD')
                       || ' has passed', '',
                       jsonb_build_object('valid_until', to_char(r.valid_until, 'YYYY-MM-DD')), %s
                FROM {record_table} r
                WHERE r.valid_until < %s AND r.archived_at IS NULL
                  AND r.status NOT IN ('superseded', 'rejected', 'deprecated')
                  AND NOT EXISTS (
                    SELECT 1 FROM {reason_table} s
                    WHERE s.record_id = r.id AND s.cause = %s AND s.resolved_at IS NULL
                  )
                RETURNING record_id
            )
            UPDATE {record_table} SET freshness = 'suspect'
            WHERE id IN (SELECT record_id FROM reasons)
            """,  # noqa: S608
            [
                SuspectReason.Cause.VALID_UNTIL_PASSED,
                now,
                now.date(),
                SuspectReason.Cause.VALID_UNTIL_PASSED,
            ],
        )
        return cursor.rowcount


def _orphan(
    where_sql: str, params: list, *, message_sql: str, message_params: list, now: dt.datetime
) -> int:
    """Clear the owner of the records `where_sql` selects (record alias r, owner alias u, the
    owner's membership of the record's space alias m, NULL when they are not a member) and give
    each an open owner-left reason naming the former owner.

    One scan finds the rows (hash joins, no per-row subquery); one UPDATE by primary key clears
    them, only where the owner is still the one the scan saw."""
    from apps.accounts.models import Membership

    record_table = Record._meta.db_table
    reason_table = SuspectReason._meta.db_table
    user_table = Record._meta.get_field("owner_user").related_model._meta.db_table
    membership_table = Membership._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT r.id, u.id, u.username, left({message_sql}, 500)
            FROM {record_table} r
            JOIN {user_table} u ON u.id = r.owner_user_id
            LEFT JOIN {membership_table} m ON m.user_id = u.id AND m.space_id = r.space_id
            WHERE r.archived_at IS NULL AND ({where_sql})
            """,  # noqa: S608 - table names are ours, values are parameters
            [*message_params, *params],
        )
        rows = cursor.fetchall()
        if not rows:
            return 0
        cursor.execute(
            f"""
            WITH c AS (
                SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::text[], %s::text[])
                    AS c(id, user_id, username, message)
            ), orphaned AS (
                UPDATE {record_table} r SET owner_user_id = NULL, freshness = 'suspect'
                FROM c WHERE r.id = c.id AND r.owner_user_id = c.user_id
                RETURNING r.id, c.user_id, c.username, c.message
            )
            INSERT INTO {reason_table} (record_id, cause, message, cause_url, details, created_at)
            SELECT o.id, %s, o.message, '',
                   jsonb_build_object('former_owner', o.username, 'former_owner_id', o.user_id),
                   %s
            FROM orphaned o
            """,  # noqa: S608
            [
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
                [r[3] for r in rows],
                SuspectReason.Cause.OWNER_LEFT,
                now,
            ],
        )
        return cursor.rowcount


def _orphan_in_history(where: dict, *, actor, message: str, now: dt.datetime) -> int:
    """The interactive paths (a member removed, "Not mine") orphan a handful of records: each
    gets a new version and a revision, so the history shows who cleared the owner and why, and
    an edit form still open on the old owner gets a version conflict instead of restoring them."""
    ids = list(
        Record.objects.filter(archived_at__isnull=True, **where).values_list("pk", flat=True)
    )
    if not ids:
        return 0
    where_ids = "r.id = ANY(%s) AND r.owner_user_id = %s"
    count = _orphan(
        where_ids,
        [ids, where["owner_user"].pk],
        message_sql="%s::text",
        message_params=[message],
        now=now,
    )
    Record.objects.filter(pk__in=ids, owner_user__isnull=True).update(
        version=F("version") + 1, updated_at=now
    )
    for record in Record.objects.filter(pk__in=ids, owner_user__isnull=True).select_related(
        "space"
    ):
        write_revision(record, action="update", actor=actor, message=message)
    return count


def orphan_owned_by(*, user, space, now: dt.datetime, actor=None, message: str = "") -> int:
    """`user` left `space`: their records there lose their owner and go to the space admins."""
    return _orphan_in_history(
        {"owner_user": user, "space": space},
        actor=actor,
        message=message or f"Its owner {user.username} left the space",
        now=now,
    )


def orphan_record(*, record: Record, user, now: dt.datetime, message: str) -> int:
    """One record goes back to the space admins (its owner said "Not mine")."""
    return _orphan_in_history(
        {"owner_user": user, "pk": record.pk}, actor=user, message=message, now=now
    )


def owner_assigned(record: Record, *, now: dt.datetime) -> int:
    """An orphaned record has an owner again: its owner-left reasons are resolved (the others
    stay until someone verifies or edits it)."""
    return SuspectReason.objects.filter(
        record=record, cause=SuspectReason.Cause.OWNER_LEFT, resolved_at__isnull=True
    ).update(resolved_at=now)


def orphan_deactivated_owners(*, now: dt.datetime) -> int:
    """Records owned by a deactivated user (found through the owner index: cheap, hourly)."""
    return _orphan(
        "NOT u.is_active",
        [],
        message_sql="'Its owner ' || u.username || ' was deactivated'",
        message_params=[],
        now=now,
    )


def orphan_inactive_owners(*, now: dt.datetime) -> int:
    """Records owned by a deactivated user, or by someone no longer a member of the space."""
    return _orphan(
        "NOT u.is_active OR m.id IS NULL",
        [],
        message_sql="""CASE WHEN u.is_active
                THEN 'Its owner ' || u.username || ' left the space'
                ELSE 'Its owner ' || u.username || ' was deactivated' END""",
        message_params=[],
        now=now,
    )
