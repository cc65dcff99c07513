"""The exact Okapi BM25 top k of a query over the postings of apps.retrieval.lexical.

A query scores, for the spaces asked, IDF = ln(1 + (N - df + 0.5) / (df + 0.5)) and
tf·(k1 + 1) / (tf + k1·(1 - b + b·len/avglen)) per query lexeme, summed per record, and
`top_k` returns the exact top k: every posting scored when the query's lexemes have few,
otherwise MaxScore (the commonest lexemes, whose upper bounds sum under a proven lower bound of
the k-th score, are not read; records read are kept only while they can still reach it, then
scored exactly). Archived records have no postings, so they count neither in the statistics nor
in the results.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from apps.retrieval import lexical

# BM25 parameters, chosen on the tuning questions (docs/benchmarks.md): with no haystack b 0.9
# was 0.005 MRR@10 better than 0.75, beside 100,000 distractors 0.085 worse; k1 1.5.
K1 = 1.5
B = 0.75
# For the first lower bound of the k-th score: the best postings read of each query lexeme,
# and how many postings of the rarest lexemes are read whole.
PROBE_POSTINGS = 50
PROBE_BUDGET = 5000
# Up to this many postings of the query's lexemes in all, they are all scored at once (cheaper
# than the pruned plan's steps).
EXHAUSTIVE_MAX = 20_000
# When the lexemes the pruned plan must read hold this share of all the query's postings, it
# scores them all instead.
EXHAUSTIVE_SHARE = 0.8
# The pruned plan looks up the skipped lexemes of at most this many records; with more
# candidates it scores every posting instead.
PROBE_MAX = 400
# Lexemes are skipped while their bounds sum to at most this share of θ: skipping more reads
# fewer postings but leaves more candidates to look up (a record is one while its read
# lexemes score at least θ minus the skipped bounds).
SKIP_SHARE = 1.0
# Thresholds are lowered by this relative margin, so float rounding never drops a record that
# ties the k-th score.
MARGIN = 1e-9

# `fetch(sql, params)` runs a statement and returns its rows.
Fetch = Callable[[str, dict], list]


@dataclass
class Term:
    """A query lexeme found in the spaces: its document frequency, IDF and the most one of its
    postings can add to a record's score."""

    lexeme: str
    df: float
    idf: float
    bound: float


@dataclass
class Ranking:
    """The exact BM25 top k: record ids best first with their scores and how many of the
    query's lexemes each has; `lexemes` is how many distinct lexemes the query has."""

    ids: list[int] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    matched: list[int] = field(default_factory=list)
    lexemes: int = 0
    # How it was computed ("exhaustive" or "pruned"), and how many postings were read.
    strategy: str = ""


def _bound_factor(avgdl: float) -> float:
    """f such that a posting of stored impact w adds at most idf·(k1+1)/(1 + (1/w - 1)·f) at the
    query's K1, B and average length. A stored impact w means 1/w - 1 = c0/tf + d0·len/tf
    (c0 = k1'(1-b'), d0 = k1'·b'/REF_LEN at the IMPACT_ parameters); at the query's parameters the
    same ratio is c/tf + (k1·b/avgdl)·len/tf, at least (1/w - 1)·min(c/c0, (k1·b/avgdl)/d0) (two
    non-negative terms, each scaled by at least that factor). The term's share tf/(tf + c + …)
    is then at most 1/(1 + that)."""
    c0 = lexical.IMPACT_K1 * (1 - lexical.IMPACT_B)
    d0 = lexical.IMPACT_K1 * lexical.IMPACT_B / lexical.REF_LEN
    c, d = K1 * (1 - B), K1 * B / avgdl
    return min(c / c0 if c0 else math.inf, d / d0 if d0 else math.inf)


def _upper(idf: float, impact: float, f: float) -> float:
    """The most a posting of this impact can add to a record's score."""
    if impact <= 0:
        return 0.0
    return idf * (K1 + 1) / (1 + (1 / impact - 1) * f)


def _score_sql(tf: str, dl: str) -> str:
    """One posting's BM25 share (t.idf from the query's term list, %(bm_avgdl)s)."""
    return (
        f"t.idf * {K1 + 1!r} * {tf} / ({tf} + {K1 * (1 - B)!r} + {K1 * B!r} * {dl}"
        " / %(bm_avgdl)s::float8)"
    )


# The query's lexemes, their document frequency over the spaces asked and their best stored
# impact (the first entry of each space's range of the posting index), with N and the
# average length of those spaces.
_STATS_SQL = f"""
    WITH q AS (
        SELECT DISTINCT v.lexeme FROM unnest(to_tsvector('{lexical.CONFIG}', %(bm_q)s)) AS v
    ),
    d AS (
        SELECT coalesce(sum(docs), 0)::float8 AS n,
               greatest(coalesce(sum(total_len), 0), 1)::float8
                   / greatest(coalesce(sum(docs), 0), 1) AS avgdl
        FROM retrieval_spacetextstats WHERE space_id = ANY(%(bm_spaces)s)
    )
    SELECT q.lexeme, coalesce(f.df, 0), m.w, d.n, d.avgdl
    FROM q CROSS JOIN d
    LEFT JOIN LATERAL (
        SELECT sum(st.df)::float8 AS df FROM retrieval_spaceterm st
        WHERE st.space_id = ANY(%(bm_spaces)s) AND st.lexeme = q.lexeme
    ) AS f ON true
    LEFT JOIN LATERAL (
        SELECT max((SELECT p.impact FROM retrieval_termposting p
                    WHERE p.space_id = sp AND p.lexeme = q.lexeme
                    ORDER BY p.impact DESC LIMIT 1)) AS w
        FROM unnest(%(bm_spaces)s::bigint[]) AS sp
    ) AS m ON true
"""

_TERMS = (
    "SELECT * FROM unnest(%(bm_lexemes)s::text[], %(bm_idf)s::float8[],"
    " %(bm_w)s::float8[], %(bm_cap)s::float8[]) AS t(lexeme, idf, w, cap)"
)


def _query_terms(fetch: Fetch, base: dict) -> tuple[list[Term], int, float] | None:
    """The query's lexemes found in the spaces, how many distinct lexemes it has, and the
    spaces' average record length; None when the query has no lexeme."""
    rows = fetch(_STATS_SQL, base)
    if not rows:
        return None
    n, avgdl = float(rows[0][3]), float(rows[0][4])
    f = _bound_factor(avgdl)
    terms = []
    for lexeme, df, w, _n, _avgdl in rows:
        df = float(df or 0)
        if df <= 0 or w is None:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        terms.append(Term(lexeme, df, idf, _upper(idf, float(w), f)))
    return terms, len(rows), avgdl


def top_k(
    *,
    fetch: Fetch,
    space_ids: list[int],
    query: str,
    k: int,
    where: str = "",
    params: dict | None = None,
    excluded: list[str] | None = None,
) -> Ranking:
    """The exact BM25 top `k` of the active records of `space_ids` for the words of `query` (its
    -exclusions already removed: `lexical.positive_terms`), ties by id. `where` (over records,
    alias r, with `params`) and `excluded` (phrases whose records are left out) filter the
    records. `fetch(sql, params)` runs a statement and returns its rows.

    With few postings to read (EXHAUSTIVE_MAX) every one is scored. Otherwise (MaxScore, with
    impact-ordered lists): (1) the best PROBE_POSTINGS postings of each lexeme give records whose
    partial scores are real lower bounds, so their k-th best, θ, is at most the true k-th score;
    (2) lexemes whose upper bounds sum to less than θ, the cheapest first, are not read at all
    (a record having only those cannot reach θ); (3) each record read is kept only while its
    partial score plus the most its unread lexemes could add reaches θ (raised to the k-th
    partial score found), and the survivors are scored exactly by primary-key lookups."""
    k = int(k)
    base: dict[str, Any] = dict(params or {})
    base.update(bm_q=query, bm_spaces=list(space_ids))
    found = _query_terms(fetch, base)
    if found is None:
        return Ranking()
    terms, n_lexemes, avgdl = found
    if not terms:
        return Ranking(lexemes=n_lexemes)
    base["bm_avgdl"] = avgdl
    base["bm_lexemes"] = [t.lexeme for t in terms]
    base["bm_idf"] = [t.idf for t in terms]
    if excluded:
        base["bm_excluded"] = list(excluded)
    keep = _filter_sql(where, bool(excluded))
    total = sum(t.df for t in terms)
    if total <= EXHAUSTIVE_MAX:
        return _exhaustive(fetch, base, keep, k, n_lexemes, "exhaustive")
    theta = _lower_bound(fetch, base, keep, terms, k)
    if theta <= 0:
        return _exhaustive(fetch, base, keep, k, n_lexemes, "exhaustive (no threshold)")
    skipped, spent = _skippable(terms, theta)
    reads = sum(t.df for i, t in enumerate(terms) if i not in skipped)
    if not skipped or reads >= total * EXHAUSTIVE_SHARE:
        return _exhaustive(fetch, base, keep, k, n_lexemes, "exhaustive (bound too weak)")
    base["bm_w"] = [None if i in skipped else 0.0 for i in range(len(terms))]
    base["bm_theta"] = theta
    base["bm_spent"] = spent
    base["bm_skipped"] = [terms[i].lexeme for i in sorted(skipped)]
    base["bm_probes"] = PROBE_MAX
    return _pruned(fetch, base, keep, k, n_lexemes, f"{len(skipped)} of {len(terms)}")


def _skippable(terms: list[Term], theta: float) -> tuple[set[int], float]:
    """(2) The lexemes not read: the smallest bounds while they sum under θ (a record having
    only those cannot reach θ), and the sum of their bounds. The others are read whole."""
    skipped: set[int] = set()
    spent = 0.0
    for i in sorted(range(len(terms)), key=lambda i: terms[i].bound):
        if spent + terms[i].bound >= theta * SKIP_SHARE:
            break
        spent += terms[i].bound
        skipped.add(i)
    return skipped, spent


def _lower_bound(fetch: Fetch, base: dict, keep: str, terms: list[Term], k: int) -> float:
    """(1) A lower bound of the k-th score: the rarest lexemes' postings read whole (up to
    PROBE_BUDGET in all; records with the query's rare words are the likely answers) and the
    best PROBE_POSTINGS of each other lexeme, summed per record; 0 with fewer than k records."""
    limits = [PROBE_POSTINGS] * len(terms)
    budget = float(PROBE_BUDGET)
    for i in sorted(range(len(terms)), key=lambda i: terms[i].df):
        if terms[i].df > budget:
            break
        limits[i] = max(PROBE_POSTINGS, int(terms[i].df))
        budget -= terms[i].df
    base["bm_w"] = [0.0] * len(terms)
    base["bm_cap"] = [float(x) for x in limits]
    probe = fetch(
        f"""
        WITH t AS ({_TERMS}),
        top AS (
            SELECT p.record_id AS id, sum({_score_sql("p.tf", "p.doc_len")}) AS score
            FROM t CROSS JOIN unnest(%(bm_spaces)s::bigint[]) AS sp
            CROSS JOIN LATERAL (
                SELECT p.record_id, p.tf, p.doc_len FROM retrieval_termposting p
                WHERE p.space_id = sp AND p.lexeme = t.lexeme
                ORDER BY p.impact DESC LIMIT t.cap::bigint
            ) AS p
            GROUP BY p.record_id
        )
        SELECT s.score FROM ({keep.format(source="top")}) AS s
        ORDER BY s.score DESC OFFSET {k - 1} LIMIT 1
        """,
        base,
    )
    return float(probe[0][0]) * (1 - MARGIN) if probe else 0.0


# (3) The read lexemes' postings summed per record (exact over those lexemes); θ raised to the
# k-th such sum; a record whose sum plus the skipped lexemes' bounds stays under θ is out; the
# rest get the skipped lexemes' shares by primary-key lookups, unless there are more than
# PROBE_MAX of them (then the skipped lexemes' postings are joined instead).
_PRUNED_SQL = """
    WITH t AS ({terms}),
    seen AS (
        SELECT p.record_id AS id, sum({score}) AS score, count(*) AS matched
        FROM t JOIN retrieval_termposting p
          ON p.space_id = ANY(%(bm_spaces)s::bigint[]) AND p.lexeme = t.lexeme
        WHERE t.w IS NOT NULL
        GROUP BY p.record_id
    ),
    reach AS (
        SELECT id, score, matched FROM seen
        WHERE score + %(bm_spent)s::float8 >= %(bm_theta)s::float8
    ),
    kept AS MATERIALIZED ({kept}),
    bar AS (
        SELECT greatest(%(bm_theta)s::float8, coalesce((
            SELECT score FROM kept ORDER BY score DESC OFFSET {offset} LIMIT 1
        ) * {margin}, 0)) AS theta
    ),
    cand AS MATERIALIZED (
        SELECT id, score, matched FROM kept
        WHERE score + %(bm_spent)s::float8 >= (SELECT theta FROM bar)
    ),
    few AS (SELECT count(*) <= %(bm_probes)s AS ok, count(*) AS n FROM cand),
    probed AS (
        SELECT c.id, c.score + coalesce(x.score, 0) AS score,
               c.matched + coalesce(x.matched, 0) AS matched
        FROM cand AS c
        CROSS JOIN LATERAL (
            SELECT sum({score}) AS score, count(*) AS matched
            FROM (
                SELECT p.lexeme, p.tf, p.doc_len FROM retrieval_termposting p
                WHERE p.record_id = c.id AND p.lexeme = ANY(%(bm_skipped)s::text[])
                OFFSET 0
            ) AS p
            JOIN t ON t.lexeme = p.lexeme
        ) AS x
        WHERE (SELECT ok FROM few)
    ),
    -- Many candidates: the skipped lexemes' postings read in index order instead, only
    -- those of candidates summed.
    joined AS (
        SELECT c.id, c.score + coalesce(x.score, 0) AS score,
               c.matched + coalesce(x.matched, 0) AS matched
        FROM cand AS c
        LEFT JOIN (
            SELECT p.record_id, sum({score}) AS score, count(*) AS matched
            FROM t JOIN retrieval_termposting p
              ON p.space_id = ANY(%(bm_spaces)s::bigint[]) AND p.lexeme = t.lexeme
            WHERE t.w IS NULL AND p.record_id IN (SELECT id FROM cand)
            GROUP BY p.record_id
        ) AS x ON x.record_id = c.id
        WHERE NOT (SELECT ok FROM few)
    ),
    exact AS (SELECT * FROM probed UNION ALL SELECT * FROM joined)
    SELECT id, score, matched, (SELECT n FROM few), (SELECT ok FROM few) FROM exact
    ORDER BY score DESC, id LIMIT {k}
"""


def _pruned(fetch: Fetch, base: dict, keep: str, k: int, n_lexemes: int, skipped: str) -> Ranking:
    """(3) The pruned plan's one statement; `skipped` says how many lexemes were not read."""
    rows = fetch(
        _PRUNED_SQL.format(
            terms=_TERMS,
            score=_score_sql("p.tf", "p.doc_len"),
            kept=keep.format(source="reach"),
            offset=k - 1,
            margin=repr(1 - MARGIN),
            k=k,
        ),
        base,
    )
    out = Ranking(lexemes=n_lexemes, strategy="pruned")
    for rid, score, matched, n_cand, probed in rows:
        out.ids.append(rid)
        out.scores.append(float(score))
        out.matched.append(int(matched))
        how = "looked up" if probed else "joined"
        out.strategy = f"pruned ({skipped} lexemes skipped, {n_cand} candidates, {how})"
    return out


def _filter_sql(where: str, excluding: bool) -> str:
    """A template keeping the rows of {source} (columns id, score, …) whose record passes
    `where` and none of the excluded phrases; without either, the rows as they are."""
    if not where and not excluding:
        return "SELECT * FROM {source}"
    clauses = [where] if where else []
    if excluding:
        clauses.append(
            "NOT r.search_vector @@ ANY(ARRAY("
            f"SELECT phraseto_tsquery('{lexical.CONFIG}', x)"
            " FROM unnest(%(bm_excluded)s::text[]) AS x))"
        )
    cond = " AND ".join(clauses).replace("{", "{{").replace("}", "}}")
    return "SELECT s.* FROM {source} AS s JOIN records_record r ON r.id = s.id WHERE " + cond


def _exhaustive(
    fetch: Fetch, base: dict, keep: str, k: int, n_lexemes: int, strategy: str
) -> Ranking:
    """Every posting of the query's lexemes scored (one aggregate over the index ranges)."""
    base = dict(base, bm_w=[None] * len(base["bm_lexemes"]), bm_cap=[0.0] * len(base["bm_lexemes"]))
    rows = fetch(
        f"""
        WITH t AS ({_TERMS}),
        scored AS (
            SELECT p.record_id AS id, sum({_score_sql("p.tf", "p.doc_len")}) AS score,
                   count(*) AS matched
            FROM t JOIN retrieval_termposting p
              ON p.space_id = ANY(%(bm_spaces)s::bigint[]) AND p.lexeme = t.lexeme
            GROUP BY p.record_id
        )
        SELECT id, score, matched FROM ({keep.format(source="scored")}) AS s
        ORDER BY score DESC, id LIMIT {int(k)}
        """,
        base,
    )
    out = Ranking(lexemes=n_lexemes, strategy=strategy)
    for rid, score, matched in rows:
        out.ids.append(rid)
        out.scores.append(float(score))
        out.matched.append(int(matched))
    return out
