"""The candidates of a bundle beyond today's search: successors of superseded records, and the
revisions in force at an `as_of` moment."""

from __future__ import annotations

import datetime as dt
import json

from django.db import connection

from apps.core.text import reveal_invisible
from apps.records import anchors as record_anchors
from apps.retrieval import search

SUPERSEDE_HOPS = 10


def _successors(record_ids: list[int], as_of: dt.datetime | None = None) -> dict[int, int]:
    """{superseded record id: id of the newest record at the end of its supersede chain}
    (through the links made by `as_of`, when given)."""
    if not record_ids:
        return {}
    when = "AND l.created_at <= %s" if as_of is not None else ""
    sql = f"""
        WITH RECURSIVE chain(origin, current, depth) AS (
            SELECT t.id, t.id, 0 FROM unnest(%s::bigint[]) AS t(id)
            UNION ALL
            SELECT c.origin, nxt.source_id, c.depth + 1
            FROM chain c
            JOIN LATERAL (
                SELECT l.source_id FROM records_link l
                WHERE l.target_id = c.current AND l.type = 'supersedes' {when}
                ORDER BY l.created_at DESC, l.id DESC LIMIT 1
            ) nxt ON true
            WHERE c.depth < {SUPERSEDE_HOPS}
        )
        SELECT DISTINCT ON (origin) origin, current FROM chain
        WHERE depth > 0 ORDER BY origin, depth DESC
    """  # noqa: S608 - only constants are interpolated
    with connection.cursor() as cursor:
        cursor.execute(sql, [record_ids] if as_of is None else [record_ids, as_of])
        return dict(cursor.fetchall())


def _omission(row: dict, reason: str, score: float | None = None) -> dict:
    entry = {"key": row["key"], "space": row["space_slug"], "title": reveal_invisible(row["title"])}
    if score is not None:
        entry["score"] = score
    entry["reason"] = reason
    return entry


# The revision of each record in force at a moment: the newest made by then (one index range
# per record on revision_unique_number). A record with none then did not exist yet.
_AS_OF_SQL = """
    SELECT DISTINCT ON (v.record_id) v.record_id, v.number, v.version, v.snapshot
    FROM records_revision v
    WHERE v.record_id = ANY(%(ids)s::bigint[]) AND v.created_at <= %(as_of)s
    ORDER BY v.record_id, v.number DESC
"""


def _as_of_revisions(record_ids: set[int], as_of: dt.datetime) -> dict[int, dict]:
    """{record id: {"number", "version", "snapshot"}} of the revisions in force at `as_of`, for
    those of `record_ids` that existed then and were not archived."""
    if not record_ids:
        return {}
    out = {}
    for row in search.fetch_dicts(_AS_OF_SQL, {"ids": list(record_ids), "as_of": as_of}):
        snapshot = row["snapshot"]
        if isinstance(snapshot, str):
            snapshot = json.loads(snapshot)
        if not snapshot.get("archived"):
            out[row["record_id"]] = {**row, "snapshot": snapshot}
    return out


def _hits_as_of(
    hits: list[search.Hit], revisions: dict[int, dict], paths: list[str]
) -> list[search.Hit]:
    """The candidates that existed at `as_of`, with the status they had then and anchored as
    their anchors were then (a record found only by today's anchors is dropped); path-anchored
    guardrails and constraints first, as in `search`."""
    out = []
    for hit in hits:
        revision = revisions.get(hit.record_id)
        if revision is None:
            continue
        snapshot = revision["snapshot"]
        hit.status = snapshot.get("status", hit.status)
        if paths:
            anchored = record_anchors.any_match(snapshot.get("anchors") or [], paths)
            if hit.anchored and not anchored and hit.fts_rank is None and hit.vec_rank is None:
                continue
            hit.anchored = anchored
        out.append(hit)
    return [h for h in out if h.pinned] + [h for h in out if not h.pinned]


def _as_it_read(row: dict, revision: dict) -> dict:
    """The row with its content as of the revision: key, title, summary, body, status, kind and
    anchors (owner, freshness and review dates stay today's)."""
    snapshot = revision["snapshot"]
    for name in ("title", "summary", "body", "status", "kind", "anchors"):
        if name in snapshot and snapshot[name] is not None:
            row[name] = snapshot[name]
    row["version"] = revision["version"]
    row["revision"] = revision["number"]
    return row
