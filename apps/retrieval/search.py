"""Hybrid retrieval: full-text and vector candidate lists fused by reciprocal rank, then boosted.

One SQL statement returns every candidate with its rank in each list and whether it is anchored
to the given paths; the fusion and boosts happen here, in Python, on at most ~150 rows.
"""

from __future__ import annotations

import functools
import logging
import re
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, cast

import psycopg
from django.conf import settings
from django.db import connection

from apps.records import policy
from apps.records.anchors import normalise_path
from apps.records.models import Record
from apps.retrieval import bm25, lexical, providers

logger = logging.getLogger(__name__)

RRF_K = 60
# Ranked full-text (BM25) candidates fused with the vector list.
FTS_LIMIT = 50
# pgvector's HNSW scan returns at most hnsw.ef_search (default 40) rows.
VEC_LIMIT = 40
ANCHOR_LIMIT = 100
# Up to this many records in the spaces searched, vector similarity is computed exactly for each
# of them (a few ms); above it the HNSW index answers approximately.
EXACT_VECTOR_MAX = 2000
# Freshness only breaks near-ties: records whose relevance is within FRESHNESS_TIE (relative) of
# each other fall into one band; inside a band, records with every word of the query come
# first, then the fresher ones. Across bands relevance alone decides, so a stale record with
# all the query's words is never put below a fresh one lacking some because of its freshness.
FRESHNESS_TIE = 0.02
FRESHNESS_ORDER: dict[str, int] = {
    Record.Freshness.FRESH: 0,
    Record.Freshness.DUE: 1,
    Record.Freshness.SUSPECT: 2,
    Record.Freshness.STALE: 3,
}
# Relevance floor: a full-text match scoring under LEXICAL_FLOOR times the best BM25 score, or a
# vector-only match less similar than VECTOR_FLOOR, is left out (listed as omitted), unless it
# is anchored to the paths asked for.
LEXICAL_FLOOR = 0.2
# Cosine similarity; measured with wordllama: a paraphrase 0.36, unrelated text 0.0-0.15.
VECTOR_FLOOR = 0.25
OMITTED_MAX = 10
# Kinds that are always included when anchored to the paths being worked on, in this order.
PINNED_KINDS = (Record.Kind.GUARDRAIL, Record.Kind.CONSTRAINT)
MODES = ("hybrid", "fulltext", "vector")
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
    # The record's BM25 score for the query, and whether it has every word of it.
    bm25: float | None = None
    all_words: bool = False

    @property
    def pinned(self) -> bool:
        return self.anchored and self.kind in PINNED_KINDS


@dataclass
class SearchResult:
    hits: list[Hit]
    # The strongest evidence that anything relevant was found (0..1), used to detect gaps: the
    # best cosine similarity, the largest share of the query's words one record has, 1.0 for a
    # path match.
    best_match: float
    used_vectors: bool
    # Matches under the relevance floor, strongest first (at most OMITTED_MAX).
    below_floor: list[Hit] = field(default_factory=list)
    # The default fusion found BM25 matches, so the query was not embedded (vectors not needed).
    lexical_only: bool = False


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
    # No JIT compilation: the BM25 aggregates over long posting lists have plan costs above
    # jit_above_cost, and compiling them took longer (tens of ms) than running them.
    settings.append("jit = off")
    # Scoring every posting of common words sums over up to one group per record: at 100,000
    # records the hash aggregate outgrows the default 4 MB and spills to disk in batches.
    settings.append("work_mem = '64MB'")
    if _iterative_scans:
        settings.append("hnsw.iterative_scan = relaxed_order")
    return settings


# The connections whose session already has the settings (forgotten when a connection goes).
_prepared_sessions: weakref.WeakSet = weakref.WeakSet()


def _prepare_session() -> None:
    """The settings the context queries need: once per connection, or for the current
    transaction when inside one (a rollback would undo a session-wide SET)."""
    connection.ensure_connection()
    raw = connection.connection
    if connection.in_atomic_block:
        for setting in _session_settings():
            _raw_execute(f"SET LOCAL {setting}")
    elif raw not in _prepared_sessions:
        for setting in _session_settings():
            _raw_execute(f"SET {setting}")
        _prepared_sessions.add(raw)


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
        # (Django's stubs type the argument as its own wrapper; it takes a DB-API cursor.)
        raw_cursor = cast(Any, _PreparedCursor(raw))
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


_NO_FTS = (
    "fts AS (SELECT NULL::bigint AS id, NULL::bigint AS rnk, NULL::bool AS all_words,"
    " NULL::float8 AS bm25, NULL::float8 AS coverage WHERE false)"
)
_NO_VEC = "vec AS (SELECT NULL::bigint AS id, NULL::bigint AS rnk, NULL::float AS sim WHERE false)"
_NO_ANCH = "anch AS (SELECT NULL::bigint AS id WHERE false)"


def _fts_part(query: str, space_ids: list[int], where: str, params: dict, filtered: bool) -> str:
    """The exact BM25 top FTS_LIMIT first, in statements of its own (bm25.top_k), then
    handed to the candidate query as arrays (added to `params`)."""
    ranking = bm25.top_k(
        fetch=_fetch_prepared,
        space_ids=list(space_ids),
        query=lexical.positive_terms(query),
        k=FTS_LIMIT,
        where=where if filtered else "",
        params=params,
        excluded=lexical.excluded_terms(query),
    )
    params["fts_ids"] = ranking.ids
    params["fts_scores"] = ranking.scores
    params["fts_matched"] = ranking.matched
    params["fts_n"] = ranking.lexemes
    return """fts AS (
        SELECT f.id, f.rnk, f.matched >= %(fts_n)s AS all_words, f.bm25,
               f.matched::float8 / greatest(%(fts_n)s, 1) AS coverage
        FROM unnest(%(fts_ids)s::bigint[], %(fts_scores)s::float8[],
                    %(fts_matched)s::int[]) WITH ORDINALITY AS f(id, bm25, matched, rnk)
    )"""


def _vec_part(embedded: tuple[str, tuple[float, ...], str], where: str, params: dict) -> str:
    """The nearest vectors to the query's (model key, vector, literal) among the records."""
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
    return f"""vec_size AS (
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


def _anchor_part(paths: list[str], where: str, params: dict) -> str:
    """The records anchored to the paths. Only records whose anchor keys (migration 0006) are
    among the paths' keys are checked against the regular expressions; pinned kinds first, so
    the cap never drops them."""
    params["paths"] = paths
    params["path_keys"] = sorted({key for path in paths for key in path_keys(path)})
    return f"""anch AS (
        SELECT r.id FROM records_record r
        WHERE {where} AND r.anchor_patterns <> '{{}}'
          AND retrieval_anchor_keys(r.anchor_patterns) && %(path_keys)s::text[]
          AND EXISTS (SELECT 1 FROM unnest(r.anchor_patterns) AS pat,
                                   unnest(%(paths)s::text[]) AS path WHERE path ~ pat)
        ORDER BY CASE r.kind WHEN 'guardrail' THEN 0 WHEN 'constraint' THEN 1 ELSE 2 END, r.id
        LIMIT {ANCHOR_LIMIT}
    )"""


def _record_filter(
    space_ids: list[int], kinds: list[str] | None, include_stale: bool
) -> tuple[str, dict, str]:
    """The WHERE clause over records (alias r) with its parameters, and the freshness
    expression."""
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
    return " AND ".join(filters), params, fresh_sql


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
    where, params, fresh_sql = _record_filter(space_ids, kinds, include_stale)
    parts = [
        _fts_part(query, space_ids, where, params, bool(kinds) or not include_stale)
        if query and mode in ("hybrid", "fulltext")
        else _NO_FTS
    ]
    # The default fusion (`fallback`) asks BM25 first and embeds the query only when no record
    # shares a word with it (below), so a search that BM25 answers pays nothing for vectors.
    lazy = mode == "hybrid" and settings.CONTEXTKB_DENSE_FUSION == "fallback"
    wants_vectors = mode == "vector" or (mode == "hybrid" and not lazy)
    embedded = _embed_query(query) if query and wants_vectors else None
    parts.append(_vec_part(embedded, where, params) if embedded else _NO_VEC)
    parts.append(_anchor_part(paths, where, params) if paths else _NO_ANCH)
    sql = f"""
        WITH {", ".join(parts)},
        ids AS (SELECT id FROM fts UNION SELECT id FROM vec UNION SELECT id FROM anch)
        SELECT r.id, r.kind, r.status, {fresh_sql}, fts.rnk, vec.rnk, vec.sim,
               (anch.id IS NOT NULL), coalesce(fts.all_words, false), fts.bm25,
               fts.coverage
        FROM ids
        JOIN records_record r ON r.id = ids.id
        LEFT JOIN fts ON fts.id = r.id
        LEFT JOIN vec ON vec.id = r.id
        LEFT JOIN anch ON anch.id = r.id
    """
    rows = _fetch_prepared(sql, params)
    if lazy and query and not any(row[4] for row in rows):
        # No BM25 match: the vector list instead (with the path matches), embedded only now.
        return hybrid_search(
            space_ids=space_ids,
            query=query,
            paths=paths,
            kinds=kinds,
            include_stale=include_stale,
            mode="vector",
            limit=limit,
        )
    result = _rank(rows, embedded=bool(embedded), limit=limit)
    result.lexical_only = lazy and bool(query)
    return result


def _near_tie_order(hits: list[Hit]) -> list[Hit]:
    """`hits` by relevance; inside a run of scores within FRESHNESS_TIE of the run's best, records
    with every word of the query first, then the fresher ones."""
    hits = sorted(hits, key=lambda h: (-h.raw, h.record_id))
    out: list[Hit] = []
    run: list[Hit] = []
    for hit in [*hits, None]:
        if run and (hit is None or hit.raw < run[0].raw * (1 - FRESHNESS_TIE)):
            run.sort(key=lambda h: (not h.all_words, FRESHNESS_ORDER.get(h.freshness, 0), -h.raw))
            out.extend(run)
            run = []
        if hit is not None:
            run.append(hit)
    return out


def _hits(rows) -> tuple[list[Hit], float]:
    """The candidate rows as hits, and the strongest evidence of a match (see SearchResult)."""
    hits: list[Hit] = []
    best = 0.0
    for row in rows:
        rid, kind, status, freshness, fts_rank, vec_rank, sim, anchored, all_words, bm25, cover = (
            row
        )
        hit = Hit(
            record_id=rid,
            kind=kind,
            status=status,
            freshness=freshness,
            fts_rank=fts_rank,
            vec_rank=vec_rank,
            similarity=float(sim) if sim is not None else None,
            anchored=bool(anchored),
            bm25=float(bm25) if bm25 is not None else None,
            all_words=bool(all_words),
        )
        hits.append(hit)
        if hit.anchored:
            best = 1.0  # a path match
        elif fts_rank:
            best = max(best, float(cover or 0))  # the share of the query's words it has
        if hit.similarity is not None:
            best = max(best, hit.similarity)
    return hits, best


def _score(hits: list[Hit], best_bm25: float) -> None:
    """Each hit's raw score and score: BM25 relative to the best match, or reciprocal-rank
    fusion when both lists are there, plus one for a path match."""
    fused = any(h.vec_rank for h in hits) and any(h.fts_rank for h in hits)
    for hit in hits:
        if fused:
            # Both lists: reciprocal-rank fusion; 1.0 = first in both.
            raw = FTS_WEIGHT / (RRF_K + hit.fts_rank) if hit.fts_rank else 0.0
            raw += VEC_WEIGHT / (RRF_K + hit.vec_rank) if hit.vec_rank else 0.0
            raw /= (FTS_WEIGHT + VEC_WEIGHT) / (RRF_K + 1)
        elif hit.bm25 is not None and best_bm25 > 0:
            raw = hit.bm25 / best_bm25  # BM25 relative to the best match
        else:
            raw = max(hit.similarity or 0.0, 0.0)  # vectors only
        if hit.anchored:
            raw += 1.0  # a path match counts like a best match of its own
        hit.raw = raw
        hit.score = round(min(1.0, raw), 4)


def _relevant(hit: Hit, best_bm25: float) -> bool:
    """Above the relevance floor (or anchored to the paths asked for)."""
    if hit.anchored:
        return True
    if hit.bm25 is not None and hit.bm25 >= LEXICAL_FLOOR * best_bm25:
        return True
    return hit.similarity is not None and hit.similarity >= VECTOR_FLOOR


def _rank(rows, *, embedded: bool, limit: int) -> SearchResult:
    """Scores, the relevance floor, pinning and the freshness tie-break."""
    hits, best = _hits(rows)
    best_bm25 = max((h.bm25 for h in hits if h.bm25 is not None), default=0.0)
    _score(hits, best_bm25)
    kept = [h for h in hits if _relevant(h, best_bm25)]
    dropped = sorted(
        (h for h in hits if not _relevant(h, best_bm25)), key=lambda h: (-h.raw, h.record_id)
    )
    ordered = _near_tie_order(kept)
    kept = [h for h in ordered if h.pinned] + [h for h in ordered if not h.pinned]
    return SearchResult(
        hits=kept[:limit],
        best_match=round(best, 4),
        used_vectors=embedded,
        below_floor=dropped[:OMITTED_MAX],
    )
