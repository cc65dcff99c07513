"""Hybrid retrieval: full-text and vector candidate lists fused by reciprocal rank, then boosted.

One SQL statement returns every candidate with its rank in each list and whether it is anchored
to the given paths; the fusion and boosts happen here, in Python, on at most ~150 rows.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from dataclasses import dataclass

import psycopg
from django.db import connection

from apps.records import policy
from apps.records.anchors import normalise_path
from apps.records.models import Record
from apps.retrieval import providers

logger = logging.getLogger(__name__)

RRF_K = 60
FTS_LIMIT = 50
# pgvector's HNSW scan returns at most hnsw.ef_search (default 40) rows.
VEC_LIMIT = 40
ANCHOR_LIMIT = 100
# Up to this many records in the spaces searched, vector similarity is computed exactly for each
# of them (a few ms); above it the HNSW index answers approximately.
EXACT_VECTOR_MAX = 2000
FRESHNESS_FACTOR = {
    Record.Freshness.FRESH: 1.0,
    Record.Freshness.DUE: 0.97,
    Record.Freshness.SUSPECT: 0.85,
    Record.Freshness.STALE: 0.8,
}
# Kinds that are always included when anchored to the paths being worked on, in this order.
PINNED_KINDS = (Record.Kind.GUARDRAIL, Record.Kind.CONSTRAINT)
MODES = ("hybrid", "fulltext", "vector")
# How the full-text list is ordered (normalisation flags of ts_rank, see PostgreSQL docs).
# ts_rank, not ts_rank_cd: as good on the ADR corpus and ~1.7 ms faster a request at 100,000
# records (cover density walks every position of every query word; docs/benchmarks.md).
FTS_RANK = "ts_rank(p.sv, tq.q_any, {norm})"
# Rank divided by the number of distinct words in the record: long ADRs do not win by size.
FTS_NORMALIZATION = 8
# Weights of the two lists in the fusion (measured on the ADR corpus, docs/benchmarks.md).
FTS_WEIGHT = 1.0
VEC_WEIGHT = 1.0


@dataclass
class Hit:
    record_id: int
    kind: str
    status: str
    freshness: str
    fts_rank: int | None = None
    vec_rank: int | None = None
    similarity: float | None = None
    anchored: bool = False
    score: float = 0.0
    raw: float = 0.0

    @property
    def pinned(self) -> bool:
        return self.anchored and self.kind in PINNED_KINDS


@dataclass
class SearchResult:
    hits: list[Hit]
    # The strongest evidence that anything relevant was found (0..1), used to detect gaps: the
    # best cosine similarity; 1.0 for a path match or a record with every word of the query
    # (without vectors, for any full-text hit).
    best_match: float
    used_vectors: bool


QUERY_TIMEOUT = 2.0  # seconds a remote provider may take to embed a query
PROVIDER_BACKOFF = 30.0  # after a failure, full-text only for this long
_provider_down_until = 0.0


@functools.lru_cache(maxsize=2048)
def _embed_query_cached(model_key: str, text: str) -> tuple[tuple[float, ...], str]:
    provider = providers.get_provider()
    if provider is None or provider.model_key != model_key:
        raise providers.EmbeddingUnavailable("The provider changed.")
    if isinstance(provider, providers.OpenAIProvider):
        vector = provider.embed([text], timeout=QUERY_TIMEOUT, attempts=1)[0]
    else:
        vector = provider.embed([text])[0]
    return tuple(vector), _vector_literal(vector)


def _embed_query(text: str) -> tuple[str, tuple[float, ...], str] | None:
    """(model_key, unit vector, its SQL literal) for a query, or None when no provider answers
    (then the search is full-text only; failures are not cached, and a failing remote provider
    is left alone for PROVIDER_BACKOFF seconds so requests do not wait on it)."""
    global _provider_down_until
    model_key = providers.current_model_key()
    if not model_key or not text.strip() or time.monotonic() < _provider_down_until:
        return None
    try:
        vector, literal = _embed_query_cached(model_key, text.strip()[:2000])
    except providers.EmbeddingUnavailable as exc:
        logger.warning("Query embedding failed; full-text only for now: %s", exc)
        _provider_down_until = time.monotonic() + PROVIDER_BACKOFF
        return None
    return model_key, vector, literal


_NEGATION = re.compile(r'(^|\s)-\S|"')
# The full-text list scores a pool of matches taken from the GIN index in tiers, each capped so a
# request reads a bounded number of tsvectors whatever the size of the space: records with all
# the query's words, then (only while fewer than FTS_TIER_BELOW were found) records missing one
# word, then records with any word. A space smaller than the caps is scored whole, so its ranking
# does not depend on the table's physical order.
FTS_ALL_CAP = 200
FTS_MOST_CAP = 200
FTS_ANY_CAP = 500
FTS_TIER_BELOW = 25
# Score = ts_rank against the any-word query times (share of the query's words present)^COORD_POWER:
# a record with every word beats one that repeats a single word (measured on the ADR corpus,
# docs/benchmarks.md).
COORD_POWER = 2
# Up to this many words, matched words are counted inline (faster than a subquery per record).
FTS_INLINE_TERMS = 24
_WORD_RUN = re.compile(r"[^\W_]+")


def _fts_parts(where: str, relax: bool, query: str) -> list[str]:
    """CTEs ending in `fts (id, rnk)`: the ranked full-text list for %(q)s. Without `relax` (the
    query uses quotes or -exclusions) only records with all the words are scored."""
    q_all = "websearch_to_tsquery('english', %(q)s)"
    q_any = f"replace({q_all}::text, ' & ', ' | ')::tsquery" if relax else q_all
    # Each part of the query in parentheses, so a websearch `or` inside one part keeps its sense.
    parts = [
        f"""fts_terms AS (
            SELECT array_agg('(' || t || ')') AS t
            FROM unnest(string_to_array({q_all}::text, ' & ')) AS t
        )""",
        f"""tq AS (
            SELECT {q_all} AS q_all, {q_any} AS q_any,
                CASE WHEN cardinality(t) >= 3 THEN (
                    SELECT string_agg(
                        '(' || array_to_string(t[:i - 1] || t[i + 1:], ' & ') || ')', ' | ')
                    FROM generate_subscripts(t, 1) AS i
                )::tsquery END AS q_most,
                (SELECT array_agg(x::tsquery) FROM unnest(t) AS x) AS each_term,
                greatest(coalesce(cardinality(t), 0), 1) AS n
            FROM fts_terms
        )""",
    ]
    few = "(SELECT count(*) FROM {}) < " + str(int(FTS_TIER_BELOW))
    tiers = [("pool_all", "tq.q_all", FTS_ALL_CAP, "")]
    if relax:
        tiers.append(("pool_most", "tq.q_most", FTS_MOST_CAP, "AND " + few.format("pool_all")))
        tiers.append(
            (
                "pool_any",
                "tq.q_any",
                FTS_ANY_CAP,
                f"AND {few.format('pool_all')} AND {few.format('pool_most')}",
            )
        )
    for name, tsquery, cap, gate in tiers:
        # Each pool carries the tsvector it matched, so scoring does not fetch the rows again.
        parts.append(
            f"""{name} AS (
                SELECT r.id, r.search_vector AS sv FROM records_record r, tq
                WHERE {where} AND r.search_vector @@ {tsquery} {gate}
                LIMIT {int(cap)}
            )"""
        )
    # A record found by several tiers keeps its first (lowest) one: `DISTINCT ON` below.
    pool = " UNION ALL ".join(
        f"SELECT id, sv, {tier} AS tier FROM {name}" for tier, (name, *_) in enumerate(tiers)
    )
    rank = FTS_RANK.format(norm=int(FTS_NORMALIZATION))
    if relax:
        # How many of the query's words each record has: one @@ per word, inline, when the
        # query has at most `slots` words (a slot past the last word is NULL and adds 0).
        words = len(_WORD_RUN.findall(query))
        # Rounded up to a few sizes, so there are few statement shapes to prepare.
        slots = next((n for n in (4, 8, 16) if words <= n), FTS_INLINE_TERMS)
        inline = " + ".join(
            f"coalesce((p.sv @@ tq.each_term[{i}])::int, 0)" for i in range(1, slots + 1)
        )
        # Records of the first tier have every word: nothing to count (most of a request's
        # scoring time when many records have all the words).
        matched = (
            f"CASE WHEN p.tier = 0 THEN tq.n WHEN tq.n <= {slots} THEN {inline} "
            "ELSE (SELECT count(*) FROM unnest(tq.each_term) AS term WHERE p.sv @@ term) END"
        )
    else:
        matched = "tq.n"  # every record in the pool has all the words
    # `all_words`: the record has every word of the query (evidence that something relevant
    # was found, for gap detection). OFFSET 0 keeps `matched` computed once per record.
    parts.append(
        f"""fts AS (
            SELECT s.id, row_number() OVER (ORDER BY s.score DESC, s.id) AS rnk, s.all_words
            FROM (
                SELECT p.id, p.matched >= tq.n AS all_words,
                       {rank} * power(p.matched / tq.n, {int(COORD_POWER)}) AS score
                FROM (
                    SELECT p.id, p.sv, ({matched})::float AS matched
                    FROM (
                        SELECT DISTINCT ON (id) id, sv, tier FROM ({pool}) AS u ORDER BY id, tier
                    ) AS p
                    CROSS JOIN tq
                    OFFSET 0
                ) AS p
                CROSS JOIN tq
            ) AS s
            ORDER BY s.score DESC, s.id
            LIMIT {FTS_LIMIT}
        )"""
    )
    return parts


# Filtered HNSW scans: without iterative scans, the index hands back its ef_search nearest
# vectors of *all* spaces (and of dead rows), and the space/kind/archived filters applied after
# it can leave the list short or empty, e.g. for a small space beside a big one. pgvector 0.8
# keeps scanning until the LIMIT is met (bounded by hnsw.max_scan_tuples, 20,000 by default).
_iterative_scans: bool | None = None  # does the server's pgvector have them? (asked once)


def _raw_execute(sql: str) -> list:
    # The raw cursor: per-connection setup, not one of the request's queries.
    with connection.cursor() as cursor:
        cursor.cursor.execute(sql)
        return cursor.cursor.fetchall() if cursor.cursor.description else []


def _session_settings() -> list[str]:
    global _iterative_scans
    if _iterative_scans is None:
        rows = _raw_execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        version = tuple(int(p) for p in re.findall(r"\d+", rows[0][0])[:2]) if rows else (0, 0)
        _iterative_scans = version >= (0, 8)
    # Custom plans only, for the prepared statements below (Django prepares nothing else): a
    # generic plan cannot see which spaces are asked for, and one shared by a big and a small
    # space took 425 ms instead of 8 for the small one.
    settings = ["plan_cache_mode = force_custom_plan"]
    if _iterative_scans:
        settings.append("hnsw.iterative_scan = relaxed_order")
    return settings


def _prepare_session() -> None:
    """The settings the context queries need: once per connection, or for the current
    transaction when inside one (a rollback would undo a session-wide SET)."""
    connection.ensure_connection()
    raw = connection.connection
    if connection.in_atomic_block:
        for setting in _session_settings():
            _raw_execute(f"SET LOCAL {setting}")
    elif getattr(connection, "_ckb_session", None) is not raw:
        for setting in _session_settings():
            _raw_execute(f"SET {setting}")
        connection._ckb_session = raw


class _PreparedCursor(psycopg.Cursor):
    """Server-side binding, prepared on first use."""

    def execute(self, query, params=None, *, prepare=True, binary=None):
        return super().execute(query, params, prepare=prepare, binary=binary)


def _fetch_prepared(sql: str, params: dict, with_names: bool = False):
    """Rows of `sql`, run as a prepared statement on persistent connections.

    The context queries' text depends only on which parts they have (a few dozen shapes), so
    each connection parses and analyses each shape once, then plans it for the actual values
    each time (custom plans, see `_session_settings`). Measured at 100,000 records: the
    candidate query went from ~22 to ~16 ms with the same rows. With DATABASE_CONN_MAX_AGE=0
    (the setting for PgBouncer in transaction mode) nothing would be reused, so the query is
    sent as usual."""
    _prepare_session()
    if not connection.settings_dict.get("CONN_MAX_AGE"):
        cursor = connection.cursor()
    else:
        raw = connection.connection
        if raw.prepare_threshold is None:
            # Django turns automatic preparation off; explicit prepare=True needs a threshold,
            # so set one nothing reaches (Django's own client-side cursors never prepare).
            raw.prepare_threshold = 2**31
        # Wrapped by Django, so query logging, counting and execute_wrappers still see it.
        raw_cursor = _PreparedCursor(raw)
        cursor = (
            connection.make_debug_cursor(raw_cursor)
            if connection.queries_logged
            else connection.make_cursor(raw_cursor)
        )
    with cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        names = [c.name for c in cursor.description]
    return (rows, names) if with_names else rows


def fetch_dicts(sql: str, params: dict) -> list[dict]:
    rows, names = _fetch_prepared(sql, params, with_names=True)
    return [dict(zip(names, row, strict=True)) for row in rows]


def path_keys(path: str) -> list[str]:
    """The anchor keys a (normalised) path can match: "", each folder prefix with its "/", and
    the path itself plus "/" (see migration 0006 for the anchors' side)."""
    return ["", *(path[: i + 1] for i, c in enumerate(path) if c == "/"), path + "/"]


def _vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(f"{x:.6f}" for x in vector) + "]"


def hybrid_search(
    *,
    space_ids: list[int],
    query: str = "",
    paths: list[str] | None = None,
    kinds: list[str] | None = None,
    include_stale: bool = True,
    mode: str = "hybrid",
    limit: int = 60,
) -> SearchResult:
    """Ranked candidates (archived records never) among `space_ids`, which the caller has
    already limited to what the principal may see."""
    paths = [normalise_path(p) for p in (paths or []) if p and p.strip()]
    query = (query or "").strip()
    if not space_ids or (not query and not paths):
        return SearchResult(hits=[], best_match=0.0, used_vectors=False)

    params: dict = {"space_ids": list(space_ids)}
    filters = ["r.archived_at IS NULL", "r.space_id = ANY(%(space_ids)s)"]
    if kinds:
        filters.append("r.kind = ANY(%(kinds)s)")
        params["kinds"] = list(kinds)
    # Freshness derived now (policy.freshness_sql), not the sweep's cached column. Superseded
    # records stay candidates: the bundle replaces them with their successor.
    fresh_sql, fresh_params = policy.freshness_sql("r", named=True)
    params.update(fresh_params)
    if not include_stale:
        filters.append(f"(r.status = 'superseded' OR {fresh_sql} NOT IN ('stale', 'suspect'))")
    where = " AND ".join(filters)

    parts: list[str] = []
    if query and mode in ("hybrid", "fulltext"):
        params["q"] = query
        parts.extend(_fts_parts(where, relax=not _NEGATION.search(query), query=query))
    else:
        parts.append(
            "fts AS (SELECT NULL::bigint AS id, NULL::bigint AS rnk, NULL::bool AS all_words"
            " WHERE false)"
        )

    embedded = _embed_query(query) if query and mode in ("hybrid", "vector") else None
    if embedded:
        model_key, vector, literal = embedded
        dims = len(vector)
        params["model_key"] = model_key
        params["vec"] = literal
        dist = f"(e.vector::vector({dims:d}) <=> %(vec)s::vector({dims:d}))"
        embedded_where = f"e.dimensions = {dims:d} AND e.model_key = %(model_key)s AND {where}"
        # Exact nearest neighbours for a small set of records (every distance computed: the
        # same answer whatever the index holds), the HNSW index above that. "+ 0" keeps the
        # planner off the index in the exact branch; the dimension is inlined (an int) so the
        # partial HNSW index for it applies in the other. Only one branch runs.
        parts.append(
            f"""vec_size AS (
                SELECT count(*) AS n FROM (
                    SELECT 1 FROM records_record r WHERE r.space_id = ANY(%(space_ids)s)
                    LIMIT {EXACT_VECTOR_MAX + 1}
                ) AS s
            ),
            vec AS (
                SELECT v.id, row_number() OVER (ORDER BY v.dist, v.id) AS rnk, 1 - v.dist AS sim
                FROM ((
                    SELECT e.record_id AS id, {dist} AS dist
                    FROM records_record r
                    JOIN retrieval_recordembedding e ON e.record_id = r.id
                    WHERE {embedded_where} AND (SELECT n FROM vec_size) <= {EXACT_VECTOR_MAX}
                    ORDER BY {dist} + 0, e.record_id
                    LIMIT {VEC_LIMIT}
                ) UNION ALL (
                    SELECT e.record_id AS id, {dist} AS dist
                    FROM retrieval_recordembedding e
                    JOIN records_record r ON r.id = e.record_id
                    WHERE {embedded_where} AND (SELECT n FROM vec_size) > {EXACT_VECTOR_MAX}
                    ORDER BY {dist}
                    LIMIT {VEC_LIMIT}
                )) AS v
            )"""
        )
    else:
        parts.append(
            "vec AS (SELECT NULL::bigint AS id, NULL::bigint AS rnk, NULL::float AS sim WHERE false)"
        )

    if paths:
        params["paths"] = paths
        params["path_keys"] = sorted({key for path in paths for key in path_keys(path)})
        # Only records whose anchor keys (migration 0006) are among the paths' keys are checked
        # against the regular expressions; pinned kinds first, so the cap never drops them.
        parts.append(
            f"""anch AS (
                SELECT r.id FROM records_record r
                WHERE {where} AND r.anchor_patterns <> '{{}}'
                  AND retrieval_anchor_keys(r.anchor_patterns) && %(path_keys)s::text[]
                  AND EXISTS (SELECT 1 FROM unnest(r.anchor_patterns) AS pat,
                                           unnest(%(paths)s::text[]) AS path WHERE path ~ pat)
                ORDER BY CASE r.kind WHEN 'guardrail' THEN 0 WHEN 'constraint' THEN 1 ELSE 2 END,
                         r.id
                LIMIT {ANCHOR_LIMIT}
            )"""
        )
    else:
        parts.append("anch AS (SELECT NULL::bigint AS id WHERE false)")

    sql = f"""
        WITH {", ".join(parts)},
        ids AS (SELECT id FROM fts UNION SELECT id FROM vec UNION SELECT id FROM anch)
        SELECT r.id, r.kind, r.status, {fresh_sql}, fts.rnk, vec.rnk, vec.sim,
               (anch.id IS NOT NULL), coalesce(fts.all_words, false)
        FROM ids
        JOIN records_record r ON r.id = ids.id
        LEFT JOIN fts ON fts.id = r.id
        LEFT JOIN vec ON vec.id = r.id
        LEFT JOIN anch ON anch.id = r.id
    """
    rows = _fetch_prepared(sql, params)

    hits = []
    best = 0.0
    for rid, kind, status, freshness, fts_rank, vec_rank, sim, anchored, all_words in rows:
        hit = Hit(
            record_id=rid,
            kind=kind,
            status=status,
            freshness=freshness,
            fts_rank=fts_rank,
            vec_rank=vec_rank,
            similarity=float(sim) if sim is not None else None,
            anchored=bool(anchored),
        )
        raw = 0.0
        if fts_rank:
            raw += FTS_WEIGHT / (RRF_K + fts_rank)
        if vec_rank:
            raw += VEC_WEIGHT / (RRF_K + vec_rank)
        if hit.anchored:
            # A path match counts like a first place in a list of its own.
            raw += 1.0 / (RRF_K + 1)
        if status != Record.Status.SUPERSEDED:
            # A superseded record stands in for its successor, whose freshness counts instead.
            raw *= FRESHNESS_FACTOR.get(freshness, 1.0)
        hit.raw = raw
        # Shown as 0..1, where 1.0 = first in both the full-text and the vector list.
        hit.score = round(min(1.0, raw / ((FTS_WEIGHT + VEC_WEIGHT) / (RRF_K + 1))), 4)
        hits.append(hit)
        if hit.anchored or (fts_rank and (all_words or not embedded)):
            best = 1.0  # a path match, or a record with every word of the query
        if hit.similarity is not None:
            best = max(best, hit.similarity)
    hits.sort(key=lambda h: (not h.pinned, -h.raw, h.record_id))
    return SearchResult(hits=hits[:limit], best_match=round(best, 4), used_vectors=bool(embedded))
