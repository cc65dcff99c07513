"""The inputs of the ranking experiments, tokenised once by PostgreSQL and cached as JSON.

    DATABASE_URL=postgresql://…/ckb_eval0 .venv/bin/python bench/quality/data.py [--haystack N]

Reads, from a database that `bench/retrieval_eval.py` filled (the `adr-eval` space), every ADR
record's `search_vector` exactly as the engine stores it (key and title weight A, summary and
tags B, body C; english stemming and stop words), and asks the same server for
`to_tsvector('english', question)` of every tune and test question. With `--haystack N` it
also rebuilds the first N distractor records of `bench/context_load.py` (same generator, same
seed, same draws; no database rows written) and has PostgreSQL compute their search vectors
with the same SQL as the loader. Everything after this step is pure Python (`engine.py`).

The cache lives under var/quality/ (ignored by git).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT.parent / "shared" / "corpora" / "adr"
if not CORPUS.exists():
    CORPUS = Path("/work/shared/corpora/adr")
CACHE = ROOT / "var" / "quality"
QUESTIONS = ROOT / "bench" / "questions"
sys.path.insert(0, str(ROOT / "bench"))
import haystack  # noqa: E402  (bench/haystack.py: the distractor generator, no Django)

# lexical.positive_terms: the -exclusions of a query do not score.
_EXCLUSION = re.compile(r'(?:^|(?<=\s))-("[^"]*"?|[^\s"]+)')


def haystack_records(n: int, seed: int = 42) -> list[dict]:
    """The first n distractors of context_load.load(n, random.Random(seed)), draw for draw."""
    return [
        {"key": d.key, "title": d.title, "summary": d.summary, "body": d.body, "fresh": d.freshness}
        for d in haystack.draws(n, random.Random(seed), CORPUS)
    ]


_ENTRY = re.compile(r"'((?:[^']|'')*)'(?::([0-9A-D,]+))?")


def parse_tsvector(text: str) -> dict[str, list[tuple[int, str]]]:
    """{lexeme: [(position, weight), …]} from a tsvector's text form."""
    out: dict[str, list[tuple[int, str]]] = {}
    for lexeme, positions in _ENTRY.findall(text or ""):
        lexeme = lexeme.replace("''", "'")
        entries = []
        for p in positions.split(",") if positions else []:
            weight = p[-1] if p[-1] in "ABC" else "D"
            entries.append((int(p.rstrip("ABCD")), weight))
        out[lexeme] = entries
    return out


def read_questions(name: str) -> list[tuple[str, str]]:
    rows = []
    for line in (QUESTIONS / name).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            question, path = line.split("\t")
            rows.append((question.strip(), path.strip()))
    return rows


VECTOR_SQL = """
    SELECT setweight(to_tsvector('simple', k), 'A')
        || setweight(to_tsvector('english', t), 'A')
        || setweight(to_tsvector('english', s), 'B')
        || setweight(to_tsvector('english', ''), 'B')
        || setweight(to_tsvector('english', b), 'C')
    FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[]) WITH ORDINALITY AS x(k, t, s, b, i)
    ORDER BY i
"""


def dump_adrs(conn) -> None:
    rows = conn.execute(
        """SELECT r.id, r.source_path, r.key, r.title, r.search_vector::text, r.body
           FROM records_record r JOIN accounts_space s ON s.id = r.space_id
           WHERE s.slug = 'adr-eval' AND r.archived_at IS NULL ORDER BY r.id"""
    ).fetchall()
    docs = [
        {"id": i, "path": p, "key": k, "title": t, "vector": v, "body": b}
        for i, p, k, t, v, b in rows
    ]
    questions = {}
    for split in ("tune", "test"):
        qs = read_questions(f"tasks_{split}.tsv")
        vectors = conn.execute(
            """SELECT to_tsvector('english', q)::text FROM unnest(%s::text[])
               WITH ORDINALITY AS x(q, i) ORDER BY i""",
            [[_EXCLUSION.sub(" ", q) for q, _ in qs]],
        ).fetchall()
        questions[split] = [
            {"q": q, "path": p, "vector": v[0]} for (q, p), v in zip(qs, vectors, strict=True)
        ]
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "adrs.json").write_text(json.dumps({"docs": docs, "questions": questions}))
    print(f"{len(docs)} ADRs, {sum(len(v) for v in questions.values())} questions")


def dump_haystack(conn, n: int) -> None:
    recs = haystack_records(n)
    out = []
    for start in range(0, n, 2000):
        chunk = recs[start : start + 2000]
        vectors = conn.execute(
            VECTOR_SQL,
            [
                [r["key"] for r in chunk],
                [r["title"] for r in chunk],
                [r["summary"] for r in chunk],
                [r["body"] for r in chunk],
            ],
        ).fetchall()
        for r, v in zip(chunk, vectors, strict=True):
            out.append({"key": r["key"], "title": r["title"], "fresh": r["fresh"], "vector": v[0]})
        print(f"  {start + len(chunk)} distractors", flush=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / f"haystack_{n}.json").write_text(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--haystack", type=int, default=0)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    if not url:
        sys.exit("Set DATABASE_URL to the database retrieval_eval.py filled.")
    with psycopg.connect(url) as conn:
        dump_adrs(conn)
        if args.haystack:
            dump_haystack(conn, args.haystack)


if __name__ == "__main__":
    main()
