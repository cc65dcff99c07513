"""The candidates of a bundle: today's search, superseded records replaced by their successors,
and with `as_of`, the records as their revisions in force then read; their rows in one query."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

from django.db import connection

from apps.records import anchors as record_anchors
from apps.records.models import Record
from apps.retrieval import search
from apps.retrieval.bundle import items
from apps.retrieval.bundle.params import ContextParams

SUPERSEDE_HOPS = 10
# Ranked candidates considered for a bundle (path-anchored guardrails and constraints always
# come first); at the default budget about a dozen fit.
CANDIDATES = 40
LEFT_OUT_SUPERSEDED = "superseded (its successor is archived or not visible to you)"


def successors(record_ids: list[int], as_of: dt.datetime | None = None) -> dict[int, int]:
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


@dataclass
class Candidates:
    """What a bundle is packed from: the search result, the records in rank order as (row, hit,
    note) with superseded ones replaced by their successor, and what was left out already."""

    result: search.SearchResult
    ordered: list[tuple[dict, search.Hit, str]] = field(default_factory=list)
    omitted: list[dict] = field(default_factory=list)
    # The weakest matches, left out by the relevance floor (apps.retrieval.search).
    below_floor: list[dict] = field(default_factory=list)


def find(
    *, principal, params: ContextParams, space_ids: list[int], mode: str, now: dt.datetime
) -> Candidates:
    """The candidates for `params` in `space_ids` (the spaces the principal may see), their rows
    read at `now` with reasons worded for the principal."""
    result = search.hybrid_search(
        space_ids=space_ids,
        query=params.query,
        paths=params.paths,
        kinds=params.kinds,
        include_stale=params.include_stale,
        mode=mode,
        # Some of today's candidates may not have existed then.
        limit=CANDIDATES if params.as_of is None else 2 * CANDIDATES,
    )
    hits, weak = result.hits, result.below_floor
    if params.as_of is None:
        successor_of = successors(_superseded(hits))
        rows = items.record_rows(_ids(hits, weak, successor_of), space_ids, now)
    else:
        hits, weak, successor_of, rows = _as_then(params, params.as_of, hits, weak, space_ids, now)
    items.present_reasons(principal, rows)
    found = Candidates(result)
    _put_in_order(found, hits, rows, successor_of, params)
    found.below_floor = [
        items.omission(rows[h.record_id], "below the relevance floor", h.score)
        for h in weak
        if h.record_id in rows
    ]
    return found


def _superseded(hits: list[search.Hit]) -> list[int]:
    return [h.record_id for h in hits if h.status == Record.Status.SUPERSEDED]


def _ids(hits: list[search.Hit], weak: list[search.Hit], successor_of: dict[int, int]) -> set[int]:
    return {h.record_id for h in [*hits, *weak]} | set(successor_of.values())


def _as_then(
    params: ContextParams,
    as_of: dt.datetime,
    hits: list[search.Hit],
    weak: list[search.Hit],
    space_ids: list[int],
    now: dt.datetime,
) -> tuple[list[search.Hit], list[search.Hit], dict[int, int], dict[int, dict]]:
    """The candidates that existed at `as_of`, their successors then, and their rows as their
    revisions in force then read."""
    revisions = _as_of_revisions({h.record_id for h in [*hits, *weak]}, as_of)
    paths = [record_anchors.normalise_path(p) for p in params.paths if p.strip()]
    hits = _hits_as_of(hits, revisions, paths)[:CANDIDATES]
    weak = [h for h in weak if h.record_id in revisions]
    successor_of = successors(_superseded(hits), as_of)
    if successor_of:
        revisions.update(_as_of_revisions(set(successor_of.values()) - set(revisions), as_of))
    rows = items.record_rows(_ids(hits, weak, successor_of), space_ids, now)
    rows = {rid: _as_it_read(row, revisions[rid]) for rid, row in rows.items() if rid in revisions}
    return hits, weak, successor_of, rows


def _put_in_order(
    found: Candidates,
    hits: list[search.Hit],
    rows: dict[int, dict],
    successor_of: dict[int, int],
    params: ContextParams,
) -> None:
    """The visible records in rank order, each once; a superseded one replaced by its successor
    (with a note saying so), or left out when it has none the request would take."""
    seen: set[int] = set()
    for hit in hits:
        row = rows.get(hit.record_id)
        note = ""
        if row is not None and row["status"] == Record.Status.SUPERSEDED:
            successor = rows.get(successor_of.get(row["id"], -1))
            if successor is None or successor["status"] == Record.Status.SUPERSEDED:
                found.omitted.append(items.omission(row, LEFT_OUT_SUPERSEDED))
                continue
            note = _replacement_note(row, successor)
            row = successor if _wanted(successor, params) else None
        if row is None or row["id"] in seen:
            continue
        seen.add(row["id"])
        found.ordered.append((row, hit, note))


def _wanted(row: dict, params: ContextParams) -> bool:
    """Whether the request would take this successor (freshness and kind filters)."""
    if not params.include_stale and row["freshness"] in ("stale", "suspect"):
        return False
    return not params.kinds or row["kind"] in params.kinds


def _replacement_note(row: dict, successor: dict) -> str:
    return (
        f"Replaces {row['key']} ({row['title']}), which matched your request but was "
        f"superseded by {successor['key']}; do not rely on {row['key']}."
    )
