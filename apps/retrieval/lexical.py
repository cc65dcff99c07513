"""Okapi BM25 inside PostgreSQL: term statistics kept with the records, exact top-k in one query.

Three tables (apps.retrieval.models), written in the same transaction as the record:

- `TermPosting` (record, lexeme): the lexeme's frequency in the record's `search_vector`, the
  record's length (all its lexeme occurrences) and an *impact*, the term-frequency part of BM25
  computed at a fixed reference length, which orders a lexeme's postings best first;
- `SpaceTerm` (space, lexeme): in how many active records of the space the lexeme occurs;
- `SpaceTextStats` (space): how many active records it has and their total length.

A query scores, for the spaces asked, IDF = ln(1 + (N - df + 0.5) / (df + 0.5)) and
tf·(k1 + 1) / (tf + k1·(1 - b + b·len/avglen)) per query lexeme, summed per record. It first reads
only the best `TOP_POSTINGS` postings of each lexeme (by impact, from the index), scores those
records exactly, and checks that no record it did not read can beat the k-th score it found: an
unread record's score is bounded by the impact of the last posting read of each lexeme. When the
bound holds the answer is the exact top k (threshold algorithm); otherwise the same statement
scores every posting of the query's lexemes (exhaustive, still exact). Archived records have no
postings, so they count neither in the statistics nor in the results.

Writes to one space take its `SpaceTextStats` row lock first, so concurrent writers of a space
update the document frequencies one after another (no deadlocks, exact counts).
"""

from __future__ import annotations

import re

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
# needs no rebuild: the bound on unread postings allows for the difference, see `_bound_sql`).
IMPACT_K1 = 1.2
IMPACT_B = 0.75
# The record length at which the stored impacts are computed; the bound on unread postings
# holds for any actual average length (see `_bound_sql`).
REF_LEN = 200.0
# Postings read per query lexeme and space before the bound is checked.
TOP_POSTINGS = 200
# Up to this many postings of the query's lexemes in all, they are all scored at once (cheaper
# than looking candidates up one by one).
EXHAUSTIVE_MAX = 5000
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


def rebuild(space_ids: list[int] | None = None) -> None:
    """Rebuild postings and statistics set-based (bulk loads, the migration): all spaces, or
    the given ones."""
    where = "" if space_ids is None else "WHERE space_id = ANY(%(s)s)"
    rwhere = "" if space_ids is None else "AND r.space_id = ANY(%(s)s)"
    params = {"s": list(space_ids or [])}
    with transaction.atomic(), connection.cursor() as cursor:
        for table in ("retrieval_spacetextstats", "retrieval_spaceterm", "retrieval_termposting"):
            cursor.execute(f"DELETE FROM {table} {where}", params)
        cursor.execute(
            f"""
            INSERT INTO retrieval_termposting (record_id, lexeme, space_id, tf, doc_len, impact)
            SELECT id, lexeme, space_id, tf, dl, {_impact("tf", "dl")}
            FROM (
                SELECT id, space_id, lexeme, tf, sum(tf) OVER (PARTITION BY id) AS dl
                FROM (
                    SELECT r.id, r.space_id, t.lexeme, {_tf()} AS tf
                    FROM records_record r CROSS JOIN LATERAL unnest(r.search_vector) AS t
                    WHERE r.archived_at IS NULL {rwhere}
                ) AS w
            ) AS p
            """,
            params,
        )
        cursor.execute(
            f"""INSERT INTO retrieval_spaceterm (space_id, lexeme, df)
                SELECT space_id, lexeme, count(*) FROM retrieval_termposting {where}
                GROUP BY space_id, lexeme""",
            params,
        )
        cursor.execute(
            f"""INSERT INTO retrieval_spacetextstats (space_id, docs, total_len)
                SELECT space_id, count(*), sum(doc_len) FROM (
                    SELECT DISTINCT ON (record_id) space_id, doc_len
                    FROM retrieval_termposting {where} ORDER BY record_id
                ) AS d GROUP BY space_id""",
            params,
        )


_EXCLUSION = re.compile(r'(?:^|(?<=\s))-("[^"]*"?|[^\s"]+)')


def positive_terms(query: str) -> str:
    """The query without its -exclusions: the words that score (quoted or not)."""
    return _EXCLUSION.sub(" ", query)


def excluded_terms(query: str) -> list[str]:
    """The -word and -"some phrase" parts of a query: records matching one are left out."""
    return [m.strip('"') for m in _EXCLUSION.findall(query) if m.strip('"').strip()]


def _term_score(tf: str, dl: str) -> str:
    return f"t.idf * {K1 + 1!r} * {tf} / ({tf} + {K1!r} * (1 - {B!r} + {B!r} * {dl} / d.avgdl))"


def _bound_sql() -> str:
    """Per lexeme, the most an unread posting can add. A stored impact w means
    1/w - 1 = c0/tf + d0·len/tf (c0 = k1'(1-b'), d0 = k1'·b'/REF_LEN at the IMPACT_ parameters);
    at the query's k1, b and average length A the same ratio is c/tf + (k1·b/A)·len/tf, which is
    at least (1/w - 1)·min(c/c0, (k1·b/A)/d0) (two non-negative terms, each scaled by at least
    that factor). The term's share tf/(tf + c + …) is then at most 1/(1 + that)."""
    c0, d0 = IMPACT_K1 * (1 - IMPACT_B), IMPACT_K1 * IMPACT_B / REF_LEN
    c, d = K1 * (1 - B), K1 * B
    return (
        f"CASE WHEN e.w > 0 THEN t.idf * {K1 + 1!r} / "
        f"(1 + (1 / e.w - 1) * least({c / c0!r}, {d / d0!r} / d.avgdl)) ELSE 0 END"
    )


def bm25_parts(*, where: str, filtered: bool, excluding: bool, k: int) -> list[str]:
    """CTEs ending in `fts (id, rnk, all_words, bm25, coverage)`: the exact BM25 top `k` of the
    records in %(space_ids)s for the words of %(q_terms)s (coverage: the share of those words
    the record has). Quoted words score like the others (in task-style questions quotes mostly
    quote). `excluding`: records matching one of %(excluded)s, the query's -exclusions, are left
    out. `where` (records, alias r) is only joined when `filtered` or `excluding`."""
    k = int(k)
    extra = (
        "AND NOT r.search_vector @@ ANY(ARRAY("
        f"SELECT phraseto_tsquery('{CONFIG}', x) FROM unnest(%(excluded)s::text[]) AS x))"
        if excluding
        else ""
    )
    join = filtered or excluding

    def keep(source: str) -> str:
        if not join:
            return f"SELECT id, score, matched FROM {source}"
        return (
            f"SELECT s.id, s.score, s.matched FROM {source} s "
            f"JOIN records_record r ON r.id = s.id WHERE {where} {extra}"
        )

    return [
        f"""bm_q AS (
            SELECT coalesce(array_agg(DISTINCT v.lexeme), '{{}}') AS lexemes,
                   count(DISTINCT v.lexeme) AS n
            FROM unnest(to_tsvector('{CONFIG}', %(q_terms)s)) AS v
        )""",
        """bm_d AS (
            SELECT coalesce(sum(docs), 0)::float8 AS n,
                   greatest(coalesce(sum(total_len), 0), 1)::float8
                       / greatest(coalesce(sum(docs), 0), 1) AS avgdl
            FROM retrieval_spacetextstats WHERE space_id = ANY(%(space_ids)s)
        )""",
        """bm_t AS (
            SELECT f.lexeme, f.df, ln(1 + (d.n - f.df + 0.5) / (f.df + 0.5)) AS idf
            FROM (
                SELECT st.lexeme, sum(st.df)::float8 AS df
                FROM retrieval_spaceterm st, bm_q
                WHERE st.space_id = ANY(%(space_ids)s) AND st.lexeme = ANY(bm_q.lexemes)
                GROUP BY st.lexeme HAVING sum(st.df) > 0
            ) AS f, bm_d AS d
        )""",
        f"""bm_small AS (
            SELECT coalesce(sum(df), 0) <= {int(EXHAUSTIVE_MAX)} AS small FROM bm_t
        )""",
        # The best postings of each lexeme in each space, and the impact of the last one read
        # (0 when the list was read to its end).
        f"""bm_top AS (
            SELECT t.lexeme, s.space_id, p.record_id, p.impact,
                   count(*) OVER (PARTITION BY t.lexeme, s.space_id) AS n_read,
                   min(p.impact) OVER (PARTITION BY t.lexeme, s.space_id) AS last_impact
            FROM bm_t AS t
            CROSS JOIN (SELECT DISTINCT unnest(%(space_ids)s::bigint[]) AS space_id) AS s
            CROSS JOIN LATERAL (
                SELECT p.record_id, p.impact FROM retrieval_termposting p
                WHERE p.space_id = s.space_id AND p.lexeme = t.lexeme
                ORDER BY p.impact DESC LIMIT {int(TOP_POSTINGS)}
            ) AS p
            WHERE NOT (SELECT small FROM bm_small)
        )""",
        f"""bm_edge AS (
            SELECT coalesce(sum(b.bound), 0) AS bound FROM (
                SELECT {_bound_sql()} AS bound
                FROM (
                    SELECT lexeme,
                           max(CASE WHEN n_read >= {int(TOP_POSTINGS)} THEN last_impact
                                    ELSE 0 END) AS w
                    FROM bm_top GROUP BY lexeme
                ) AS e
                JOIN bm_t AS t ON t.lexeme = e.lexeme CROSS JOIN bm_d AS d
            ) AS b
        )""",
        # Each candidate's postings of the query's lexemes, looked up by primary key (OFFSET 0
        # keeps it a per-candidate lookup rather than a scan of the lexemes' postings).
        f"""bm_s1 AS (
            SELECT c.record_id AS id, sum({_term_score("p.tf", "p.doc_len")}) AS score,
                   count(*) AS matched
            FROM (SELECT DISTINCT record_id FROM bm_top) AS c
            CROSS JOIN LATERAL (
                SELECT p.lexeme, p.tf, p.doc_len FROM retrieval_termposting p, bm_q
                WHERE p.record_id = c.record_id AND p.lexeme = ANY(bm_q.lexemes)
                OFFSET 0
            ) AS p
            JOIN bm_t AS t ON t.lexeme = p.lexeme CROSS JOIN bm_d AS d
            GROUP BY c.record_id
        )""",
        f"bm_f1 AS ({keep('bm_s1')})",
        # Strictly above the bound: an unread record cannot even tie the k-th (ties go by id).
        f"""bm_ok AS (
            SELECT NOT (SELECT small FROM bm_small) AND coalesce((SELECT score FROM bm_f1 ORDER BY score DESC OFFSET {k - 1} LIMIT 1),
                            0) > (SELECT bound FROM bm_edge) AS ok
        )""",
        # Only when the bound does not hold: every posting of the query's lexemes.
        f"""bm_s2 AS (
            SELECT p.record_id AS id, sum({_term_score("p.tf", "p.doc_len")}) AS score,
                   count(*) AS matched
            FROM bm_t AS t
            JOIN retrieval_termposting p
              ON p.space_id = ANY(%(space_ids)s) AND p.lexeme = t.lexeme
            CROSS JOIN bm_d AS d
            WHERE NOT (SELECT ok FROM bm_ok)
            GROUP BY p.record_id
        )""",
        f"""bm_f2 AS ({keep("bm_s2")})""",
        f"""fts AS (
            SELECT u.id, row_number() OVER (ORDER BY u.score DESC, u.id) AS rnk,
                   u.matched >= (SELECT n FROM bm_q) AS all_words, u.score AS bm25,
                   u.matched::float8 / greatest((SELECT n FROM bm_q), 1) AS coverage
            FROM (
                (SELECT * FROM bm_f1 WHERE (SELECT ok FROM bm_ok)
                 ORDER BY score DESC, id LIMIT {k})
                UNION ALL
                (SELECT * FROM bm_f2 ORDER BY score DESC, id LIMIT {k})
            ) AS u
            ORDER BY u.score DESC, u.id
            LIMIT {k}
        )""",
    ]
