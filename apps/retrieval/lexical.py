"""Okapi BM25 inside PostgreSQL: term statistics kept with the records, exact top-k.

Three tables (apps.retrieval.models), written in the same transaction as the record:

- `TermPosting` (record, lexeme): the lexeme's frequency in the record's `search_vector`, the
  record's length (all its lexeme occurrences) and an *impact*, the term-frequency part of BM25
  computed at a fixed reference length, which orders a lexeme's postings best first;
- `SpaceTerm` (space, lexeme): in how many active records of the space the lexeme occurs;
- `SpaceTextStats` (space): how many active records it has and their total length.

A query scores, for the spaces asked, IDF = ln(1 + (N - df + 0.5) / (df + 0.5)) and
tf·(k1 + 1) / (tf + k1·(1 - b + b·len/avglen)) per query lexeme, summed per record, and
`top_k` returns the exact top k: every posting scored when the query's lexemes have few,
otherwise MaxScore (the commonest lexemes, whose upper bounds sum under a proven lower bound of
the k-th score, are not read; records read are kept only while they can still reach it, then
scored exactly). Archived records have no postings, so they count neither in the statistics nor
in the results.

Writes to one space take its `SpaceTextStats` row lock first, so concurrent writers of a space
update the document frequencies one after another (no deadlocks, exact counts).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from django.db import connection, transaction

# BM25 parameters, chosen on the tuning questions (docs/benchmarks.md): with no haystack b 0.9
# was 0.005 MRR@10 better than 0.75, beside 100,000 distractors 0.085 worse; k1 1.5.
K1 = 1.5
B = 0.75
# How many body occurrences one occurrence in the key or title (A) and in the summary or tags (B)
# counts for (a simple BM25F). 1/1, plain BM25: on the tuning questions 3/1.5 was no better,
# and beside 100,000 distractors whose titles repeat ADR titles it favoured the distractors.
WEIGHT_A = 1.0
WEIGHT_B = 1.0
# The stored impacts are the term-frequency part at these parameters (changing K1 and B above
# needs no rebuild: the bounds allow for the difference, see `_bound_factor`).
IMPACT_K1 = 1.2
IMPACT_B = 0.75
# The record length at which the stored impacts are computed; the bounds
# hold for any actual average length (see `_bound_factor`).
REF_LEN = 200.0
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
# The text search configuration of the record's search_vector (apps.records.services).
CONFIG = "english"


def _impact(tf: str, dl: str) -> str:
    c0, d0 = IMPACT_K1 * (1 - IMPACT_B), IMPACT_K1 * IMPACT_B / REF_LEN
    return f"({tf}::float8 / ({tf} + {c0!r} + {d0!r} * {dl}))"


# A lexeme's weighted frequency from its tsvector entry (alias t; positions carry the weights).
_TF = (
    "coalesce((SELECT sum(CASE w WHEN 'A' THEN {a!r} WHEN 'B' THEN {b!r} ELSE 1 END)"
    " FROM unnest(t.weights) AS w), 1)::float8"
)


def _tf() -> str:
    if WEIGHT_A == WEIGHT_B == 1:
        # Every occurrence counts once: the number of positions (no subquery per lexeme).
        return "coalesce(array_length(t.weights, 1), 1)::float8"
    return _TF.format(a=WEIGHT_A, b=WEIGHT_B)


_LOCK_SQL = """
    INSERT INTO retrieval_spacetextstats (space_id, docs, total_len)
    SELECT space_id, 0, 0 FROM records_record WHERE id = %(id)s
    ON CONFLICT (space_id) DO UPDATE SET docs = retrieval_spacetextstats.docs
"""

# The postings of one record rewritten from its search_vector (none when archived), with the
# document frequencies and totals of its space adjusted by the difference.
_INDEX_SQL = f"""
    WITH new AS (
        SELECT r.space_id, t.lexeme, {_tf()} AS tf
        FROM records_record r CROSS JOIN LATERAL unnest(r.search_vector) AS t
        WHERE r.id = %(id)s AND r.archived_at IS NULL
    ),
    new_len AS (SELECT coalesce(sum(tf), 0)::float8 AS dl, count(*) AS n FROM new),
    old AS (SELECT lexeme, doc_len FROM retrieval_termposting WHERE record_id = %(id)s),
    old_len AS (SELECT coalesce(max(doc_len), 0)::float8 AS dl, count(*) AS n FROM old),
    gone AS (
        DELETE FROM retrieval_termposting p
        WHERE p.record_id = %(id)s AND NOT EXISTS (SELECT 1 FROM new WHERE new.lexeme = p.lexeme)
        RETURNING p.space_id, p.lexeme
    ),
    put AS (
        INSERT INTO retrieval_termposting (record_id, lexeme, space_id, tf, doc_len, impact)
        SELECT %(id)s, new.lexeme, new.space_id, new.tf, l.dl, {_impact("new.tf", "l.dl")}
        FROM new, new_len AS l
        ON CONFLICT (record_id, lexeme) DO UPDATE
            SET tf = EXCLUDED.tf, doc_len = EXCLUDED.doc_len, impact = EXCLUDED.impact
    ),
    df AS (
        INSERT INTO retrieval_spaceterm (space_id, lexeme, df)
        SELECT space_id, lexeme, sum(d) FROM (
            SELECT space_id, lexeme, 1 AS d FROM new
            WHERE NOT EXISTS (SELECT 1 FROM old WHERE old.lexeme = new.lexeme)
            UNION ALL
            SELECT space_id, lexeme, -1 FROM gone
        ) AS x
        GROUP BY space_id, lexeme ORDER BY space_id, lexeme
        ON CONFLICT (space_id, lexeme) DO UPDATE SET df = retrieval_spaceterm.df + EXCLUDED.df
    )
    UPDATE retrieval_spacetextstats s
    SET docs = s.docs + (n.n > 0)::int - (o.n > 0)::int, total_len = s.total_len + n.dl - o.dl
    FROM new_len AS n, old_len AS o
    WHERE s.space_id = (SELECT space_id FROM records_record WHERE id = %(id)s)
"""


def index_record(record_id: int) -> None:
    """Bring the record's postings and its space's statistics up to date with its current
    search_vector and archived state (call inside the writing transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(_LOCK_SQL, {"id": record_id})
        cursor.execute(_INDEX_SQL, {"id": record_id})


# From this many records, rebuild() drops the postings' indexes and foreign key, writes the
# rows, and builds them again once (sorted builds instead of 100 index insertions per record,
# and no deferred foreign-key check per posting): about ten times faster for bulk loads.
BULK_MIN = 20_000
# Memory for the sorts of a bulk rebuild (index builds, the document-frequency aggregate).
BULK_MEMORY = "512MB"


def rebuild(space_ids: list[int] | None = None, *, bulk: bool | None = None) -> None:
    """Rebuild postings and statistics set-based (bulk loads, the migration): all spaces, or
    the given ones. `bulk` (by default from BULK_MIN records) builds the postings' indexes after
    writing the rows; it locks the postings table for the whole rebuild (no searches meanwhile)."""
    where = "" if space_ids is None else "WHERE space_id = ANY(%(s)s)"
    rwhere = "" if space_ids is None else "AND r.space_id = ANY(%(s)s)"
    params = {"s": list(space_ids or [])}
    with transaction.atomic(), connection.cursor() as cursor:
        if bulk is None:
            cursor.execute(
                f"SELECT count(*) FROM records_record r WHERE r.archived_at IS NULL {rwhere}",
                params,
            )
            bulk = cursor.fetchone()[0] >= BULK_MIN
        deferred: list[str] = []
        if bulk:
            cursor.execute(f"SET LOCAL maintenance_work_mem = '{BULK_MEMORY}'")
            cursor.execute(f"SET LOCAL work_mem = '{BULK_MEMORY}'")
            cursor.execute("SET LOCAL synchronous_commit = off")
            deferred = _drop_posting_indexes(cursor)
        for table in ("retrieval_spacetextstats", "retrieval_spaceterm", "retrieval_termposting"):
            cursor.execute(f"DELETE FROM {table} {where}", params)
        # One pass over the records: each record's lexemes with its length (the sum of its
        # weighted frequencies) computed beside them, no sort of the postings.
        cursor.execute(
            f"""
            INSERT INTO retrieval_termposting (record_id, lexeme, space_id, tf, doc_len, impact)
            SELECT r.id, t.lexeme, r.space_id, {_tf()}, l.dl, {_impact(_tf(), "l.dl")}
            FROM records_record r
            CROSS JOIN LATERAL (
                SELECT coalesce(sum({_tf()}), 0)::float8 AS dl FROM unnest(r.search_vector) AS t
            ) AS l
            CROSS JOIN LATERAL unnest(r.search_vector) AS t
            WHERE r.archived_at IS NULL {rwhere}
            """,
            params,
        )
        for statement in deferred:
            cursor.execute(statement)
        cursor.execute(
            f"""INSERT INTO retrieval_spaceterm (space_id, lexeme, df)
                SELECT space_id, lexeme, count(*) FROM retrieval_termposting {where}
                GROUP BY space_id, lexeme""",
            params,
        )
        cursor.execute(
            f"""INSERT INTO retrieval_spacetextstats (space_id, docs, total_len)
                SELECT r.space_id, count(*), coalesce(sum(l.dl), 0) FROM records_record r
                CROSS JOIN LATERAL (
                    SELECT sum({_tf()})::float8 AS dl FROM unnest(r.search_vector) AS t
                ) AS l
                WHERE r.archived_at IS NULL AND l.dl > 0 {rwhere}
                GROUP BY r.space_id""",
            params,
        )
        # Fresh statistics for the planner: with none, the pruned plan's join of candidates to
        # the skipped lexemes' postings was planned as nested loops over the whole table.
        cursor.execute("ANALYZE retrieval_termposting")
        cursor.execute("ANALYZE retrieval_spaceterm")


def _drop_posting_indexes(cursor) -> list[str]:
    """Drop the postings table's indexes, primary key and foreign keys; return the statements
    that create them again (their current definitions, so they follow the migrations)."""
    cursor.execute(
        """SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint
           WHERE conrelid = 'retrieval_termposting'::regclass AND contype IN ('p', 'f')
           ORDER BY contype DESC"""
    )
    constraints = cursor.fetchall()
    cursor.execute(
        """SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
           WHERE i.indrelid = 'retrieval_termposting'::regclass
             AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"""
    )
    indexes = cursor.fetchall()
    for name, _definition in constraints:
        cursor.execute(f'ALTER TABLE retrieval_termposting DROP CONSTRAINT "{name}"')
    for name, _definition in indexes:
        cursor.execute(f"DROP INDEX {name}")
    # Primary key first (contype 'p' sorts after 'f' descending), then the other indexes, then
    # the foreign keys (validated in one pass each).
    return [
        *(
            f'ALTER TABLE retrieval_termposting ADD CONSTRAINT "{n}" {d}'
            for n, d in constraints
            if d.startswith("PRIMARY KEY")
        ),
        *(d for _n, d in indexes),
        *(
            f'ALTER TABLE retrieval_termposting ADD CONSTRAINT "{n}" {d}'
            for n, d in constraints
            if not d.startswith("PRIMARY KEY")
        ),
    ]


_EXCLUSION = re.compile(r'(?:^|(?<=\s))-("[^"]*"?|[^\s"]+)')


def positive_terms(query: str) -> str:
    """The query without its -exclusions: the words that score (quoted or not)."""
    return _EXCLUSION.sub(" ", query)


def excluded_terms(query: str) -> list[str]:
    """The -word and -"some phrase" parts of a query: records matching one are left out."""
    return [m.strip('"') for m in _EXCLUSION.findall(query) if m.strip('"').strip()]


def _bound_factor(avgdl: float) -> float:
    """f such that a posting of stored impact w adds at most idf·(k1+1)/(1 + (1/w - 1)·f) at the
    query's K1, B and average length. A stored impact w means 1/w - 1 = c0/tf + d0·len/tf
    (c0 = k1'(1-b'), d0 = k1'·b'/REF_LEN at the IMPACT_ parameters); at the query's parameters the
    same ratio is c/tf + (k1·b/avgdl)·len/tf, at least (1/w - 1)·min(c/c0, (k1·b/avgdl)/d0) (two
    non-negative terms, each scaled by at least that factor). The term's share tf/(tf + c + …)
    is then at most 1/(1 + that)."""
    c0, d0 = IMPACT_K1 * (1 - IMPACT_B), IMPACT_K1 * IMPACT_B / REF_LEN
    c, d = K1 * (1 - B), K1 * B / avgdl
    return min(c / c0 if c0 else math.inf, d / d0 if d0 else math.inf)


def _upper(idf: float, impact: float, f: float) -> float:
    """The most a posting of this impact can add to a record's score."""
    if impact <= 0:
        return 0.0
    return idf * (K1 + 1) / (1 + (1 / impact - 1) * f)


def _impact_for(idf: float, share: float, f: float) -> float:
    """The least impact a posting must have to add `share` or more (the inverse of _upper):
    postings under it add less."""
    if share <= 0:
        return 0.0
    ratio = idf * (K1 + 1) / share
    if ratio <= 1:
        return math.inf
    return 1 / (1 + (ratio - 1) / f) if f > 0 else 0.0


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
        SELECT DISTINCT v.lexeme FROM unnest(to_tsvector('{CONFIG}', %(bm_q)s)) AS v
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


def top_k(
    *,
    fetch,
    space_ids: list[int],
    query: str,
    k: int,
    where: str = "",
    params: dict | None = None,
    excluded: list[str] | None = None,
) -> Ranking:
    """The exact BM25 top `k` of the active records of `space_ids` for the words of `query` (its
    -exclusions already removed: `positive_terms`), ties by id. `where` (over records, alias r,
    with `params`) and `excluded` (phrases whose records are left out) filter the records.
    `fetch(sql, params)` runs a statement and returns its rows.

    With few postings to read (EXHAUSTIVE_MAX) every one is scored. Otherwise (MaxScore, with
    impact-ordered lists): (1) the best PROBE_POSTINGS postings of each lexeme give records whose
    partial scores are real lower bounds, so their k-th best, θ, is at most the true k-th score;
    (2) lexemes whose upper bounds sum to less than θ, the cheapest first, are not read at all
    (a record having only those cannot reach θ), and the rest of θ is shared among the other
    lexemes as thresholds on the impact of the postings read; a record none of whose read
    postings qualify scores below θ; (3) each record read is kept only while its partial score
    plus the most its unread lexemes could add reaches θ (raised to the k-th partial score
    found), and the survivors are scored exactly by primary-key lookups."""
    k = int(k)
    base = dict(params or {})
    base.update(bm_q=query, bm_spaces=list(space_ids))
    rows = fetch(_STATS_SQL, base)
    if not rows:
        return Ranking()
    n_lexemes = len(rows)
    n, avgdl = float(rows[0][3]), float(rows[0][4])
    f = _bound_factor(avgdl)
    terms = []  # (lexeme, df, idf, upper bound)
    for lexeme, df, w, _n, _avgdl in rows:
        df = float(df or 0)
        if df <= 0 or w is None:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        terms.append((lexeme, df, idf, _upper(idf, float(w), f)))
    if not terms:
        return Ranking(lexemes=n_lexemes)
    base["bm_avgdl"] = avgdl
    base["bm_lexemes"] = [t[0] for t in terms]
    base["bm_idf"] = [t[2] for t in terms]
    if excluded:
        base["bm_excluded"] = list(excluded)
    keep = _filter_sql(where, bool(excluded))
    total = sum(t[1] for t in terms)
    if total <= EXHAUSTIVE_MAX:
        return _exhaustive(fetch, base, keep, k, n_lexemes, "exhaustive")

    # (1) A lower bound of the k-th score: the rarest lexemes' postings read whole (up to
    # PROBE_BUDGET in all; records with the query's rare words are the likely answers) and the
    # best PROBE_POSTINGS of each other lexeme, summed per record.
    limits, budget = [PROBE_POSTINGS] * len(terms), PROBE_BUDGET
    for i in sorted(range(len(terms)), key=lambda i: terms[i][1]):
        if terms[i][1] > budget:
            break
        limits[i] = max(PROBE_POSTINGS, int(terms[i][1]))
        budget -= terms[i][1]
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
    theta = float(probe[0][0]) * (1 - MARGIN) if probe else 0.0
    if theta <= 0:
        return _exhaustive(fetch, base, keep, k, n_lexemes, "exhaustive (no threshold)")

    # (2) Lexemes not read: the smallest bounds while they sum under θ (a record having only
    # those cannot reach θ). The others are read whole.
    order = sorted(range(len(terms)), key=lambda i: terms[i][3])
    skipped, spent = set(), 0.0
    for i in order:
        if spent + terms[i][3] >= theta * SKIP_SHARE:
            break
        spent += terms[i][3]
        skipped.add(i)
    reads = sum(terms[i][1] for i in range(len(terms)) if i not in skipped)
    if not skipped or reads >= total * EXHAUSTIVE_SHARE:
        return _exhaustive(fetch, base, keep, k, n_lexemes, "exhaustive (bound too weak)")
    base["bm_w"] = [None if i in skipped else 0.0 for i in range(len(terms))]
    base["bm_theta"] = theta
    base["bm_spent"] = spent
    base["bm_skipped"] = [terms[i][0] for i in sorted(skipped)]
    base["bm_probes"] = PROBE_MAX
    # (3) The read lexemes' postings summed per record (exact over those lexemes); θ raised to
    # the k-th such sum; a record whose sum plus the skipped lexemes' bounds stays under θ is
    # out; the rest get the skipped lexemes' shares by primary-key lookups, unless there are
    # more than PROBE_MAX of them (then every posting is scored instead).
    rows = fetch(
        f"""
        WITH t AS ({_TERMS}),
        seen AS (
            SELECT p.record_id AS id, sum({_score_sql("p.tf", "p.doc_len")}) AS score,
                   count(*) AS matched
            FROM t JOIN retrieval_termposting p
              ON p.space_id = ANY(%(bm_spaces)s::bigint[]) AND p.lexeme = t.lexeme
            WHERE t.w IS NOT NULL
            GROUP BY p.record_id
        ),
        reach AS (
            SELECT id, score, matched FROM seen
            WHERE score + %(bm_spent)s::float8 >= %(bm_theta)s::float8
        ),
        kept AS MATERIALIZED ({keep.format(source="reach")}),
        bar AS (
            SELECT greatest(%(bm_theta)s::float8, coalesce((
                SELECT score FROM kept ORDER BY score DESC OFFSET {k - 1} LIMIT 1
            ) * {1 - MARGIN!r}, 0)) AS theta
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
                SELECT sum({_score_sql("p.tf", "p.doc_len")}) AS score, count(*) AS matched
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
                SELECT p.record_id, sum({_score_sql("p.tf", "p.doc_len")}) AS score,
                       count(*) AS matched
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
        """,
        base,
    )
    out = Ranking(lexemes=n_lexemes, strategy="pruned")
    for rid, score, matched, n_cand, probed in rows:
        out.ids.append(rid)
        out.scores.append(float(score))
        out.matched.append(int(matched))
        out.strategy = (
            f"pruned ({len(skipped)} of {len(terms)} lexemes skipped, {n_cand} candidates, "
            f"{'looked up' if probed else 'joined'})"
        )
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
            f"SELECT phraseto_tsquery('{CONFIG}', x) FROM unnest(%(bm_excluded)s::text[]) AS x))"
        )
    cond = " AND ".join(clauses).replace("{", "{{").replace("}", "}}")
    return "SELECT s.* FROM {source} AS s JOIN records_record r ON r.id = s.id WHERE " + cond


def _exhaustive(fetch, base: dict, keep: str, k: int, n_lexemes: int, strategy: str) -> Ranking:
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
