"""Okapi BM25 term statistics inside PostgreSQL, kept with the records (the ranking that reads
them is apps.retrieval.bm25).

Three tables (apps.retrieval.models), written in the same transaction as the record:

- `TermPosting` (record, lexeme): the lexeme's frequency in the record's `search_vector`, the
  record's length (all its lexeme occurrences) and an *impact*, the term-frequency part of BM25
  computed at a fixed reference length, which orders a lexeme's postings best first;
- `SpaceTerm` (space, lexeme): in how many active records of the space the lexeme occurs;
- `SpaceTextStats` (space): how many active records it has and their total length.

Archived records have no postings, so they count neither in the statistics nor in the results.
Writes to one space take its `SpaceTextStats` row lock first, so concurrent writers of a space
update the document frequencies one after another (no deadlocks, exact counts).
"""

from __future__ import annotations

import re

from django.db import connection, transaction

# How many body occurrences one occurrence in the key or title (A) and in the summary or tags (B)
# counts for (a simple BM25F). 1/1, plain BM25: on the tuning questions 3/1.5 was no better,
# and beside 100,000 distractors whose titles repeat ADR titles it favoured the distractors.
WEIGHT_A = 1.0
WEIGHT_B = 1.0
# The stored impacts are the term-frequency part at these parameters (changing bm25.K1 and
# bm25.B needs no rebuild: the bounds allow for the difference, see `bm25._bound_factor`).
IMPACT_K1 = 1.2
IMPACT_B = 0.75
# The record length at which the stored impacts are computed; the bounds
# hold for any actual average length (see `bm25._bound_factor`).
REF_LEN = 200.0
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
