"""Candidate ranking changes on the TUNE half, then the chosen finalists on the TEST half once.

    .venv/bin/python bench/quality/data.py --haystack 10000   # once, needs DATABASE_URL
    .venv/bin/python bench/quality/experiments.py tune        # every candidate, tune half
    .venv/bin/python bench/quality/experiments.py test        # FINALISTS only, test half
    .venv/bin/python bench/quality/experiments.py ceiling     # BM25 told the repository

Haystacks 0 and 10,000 (the first 10,000 records `bench/context_load.py` generates with seed
42). Each row: MRR@10 / recall@10, and against the baseline (today's engine) the mean paired
difference of reciprocal ranks, its 95 % bootstrap interval (10,000 resamples), the one-sided
bootstrap p (share of resamples <= 0) and a two-sided sign test over the questions that differ.
The bm25s reference (k1 1.5, b 0.75, English stop words, Snowball stemmer, as
bench/retrieval_eval.py) is computed over the same texts.
"""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from data import CACHE, haystack_records
from engine import (
    Index,
    Params,
    bm25_scores,
    build_index,
    load_docs,
    make_query,
    paired,
    recall,
    reciprocal_ranks,
)

HAYSTACKS = (0, 10_000)
BASE = Params(label="baseline: engine today (BM25 k1 1.5 b 0.75, one bag)")
# Task phrasing written down before measuring (contraction remnants the parser leaves, e.g.
# "I'm" -> "m", and words that describe the asking, not the subject).
TASK_WORDS = frozenset(
    [
        "m",
        "ve",
        "ll",
        "re",
        "d",
        "know",
        "need",
        "want",
        "wonder",
        "ask",
        "tell",
        "would",
        "could",
        "might",
        "must",
        "let",
        "ok",
        "okay",
        "someth",
        "anyth",
        "actual",
        "realli",
        "els",
        "pleas",
        "happen",
        "mean",
    ]
)
CANDIDATES = [
    BASE,
    Params(k1=1.5, b=0.9, label="b 0.9"),
    Params(k1=2.0, b=0.9, label="k1 2.0, b 0.9"),
    Params(k1=3.0, b=1.0, label="k1 3.0, b 1.0 (best of the k1/b grid)"),
    Params(weights=(2.0, 1.0, 1.0), label="title (A) weight 2, one bag"),
    Params(
        weights=(2.0, 1.0, 1.0),
        field_b=(0.75, 0.75, 0.9),
        label="BM25F: A weight 2, b per field A 0.75 / C 0.9",
    ),
    Params(title_bonus=0.25, label="title-only BM25 bonus x0.25"),
    Params(
        drop=frozenset(["m", "ve", "ll", "re", "d"]), noise_weight=0.0, label="drop m/ve/ll/re/d"
    ),
    Params(drop=TASK_WORDS, noise_weight=0.0, label="drop task-phrasing words"),
    Params(drop=TASK_WORDS, noise_weight=0.25, label="task-phrasing words x0.25"),
    Params(max_df_share=0.3, label="drop query lexemes in > 30 % of records"),
    Params(idf_power=1.5, label="IDF^1.5"),
    Params(qtf=True, label="query term frequency"),
    Params(delta=0.5, label="BM25+ delta 0.5"),
    Params(coverage=0.5, label="x (matched share)^0.5"),
    Params(bigram=0.25, window=3, label="pair proximity (within 3) x0.25"),
    Params(prf_docs=3, prf_terms=10, prf_weight=0.2, label="RM3-like PRF (3 docs, 10 terms, 0.2)"),
    Params(passage=0.5, passage_len=50, label="passage 50 x0.5"),
    Params(passage=1.0, passage_len=50, label="passage 50 x1 (F1)"),
    Params(passage=1.5, passage_len=50, label="passage 50 x1.5 (F2)"),
    Params(passage=2.0, passage_len=50, label="passage 50 x2"),
    Params(passage=1.0, passage_len=30, label="passage 30 x1"),
    Params(passage=1.0, passage_len=75, label="passage 75 x1"),
    Params(passage=1.0, passage_len=50, qtf=True, label="F1 + query term frequency"),
    Params(passage=1.0, passage_len=50, b=0.9, label="F1 + b 0.9"),
]
# Chosen on the tune half (README.md): the passage bonus at the middle of its plateau.
FINALISTS = [
    Params(passage=1.0, passage_len=50, label="F1: BM25 + 1.0 x best 50-position passage"),
    Params(passage=1.5, passage_len=50, label="F2: BM25 + 1.5 x best 50-position passage"),
]


def index_for(haystack: int) -> tuple[Index, dict]:
    path = CACHE / f"index_{haystack}.pkl"
    if path.exists():
        with path.open("rb") as f:
            return pickle.load(f)
    docs, questions = load_docs(haystack)
    built = (build_index(docs), questions)
    with path.open("wb") as f:
        pickle.dump(built, f)
    return built


def reference(index: Index, haystack: int, questions: list[dict]) -> np.ndarray:
    """bm25s over key, title, summary, tags and body, as bench/retrieval_eval.py."""
    import bm25s
    import Stemmer

    data = json.loads((CACHE / "adrs.json").read_text())
    texts = [" ".join([d["key"], d["title"], "", "", d["body"]]) for d in data["docs"]]
    texts += [
        " ".join([h["key"], h["title"], h["summary"], "", h["body"]])
        for h in haystack_records(haystack)
    ]
    assert len(texts) == index.n
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25(k1=1.5, b=0.75)
    retriever.index(
        bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    tokens = bm25s.tokenize(
        [r["q"] for r in questions], stopwords="en", stemmer=stemmer, show_progress=False
    )
    results, _ = retriever.retrieve(tokens, k=10, show_progress=False)
    out = []
    for row, ranked in zip(questions, results, strict=True):
        target = index.by_path[row["path"]]
        ranked = [int(i) for i in ranked]
        out.append(1.0 / (ranked.index(target) + 1) if target in ranked else 0.0)
    return np.array(out)


def fmt(rr: np.ndarray) -> str:
    return f"{rr.mean():.3f} / {recall(rr):.3f}"


def fmt_paired(base: np.ndarray, rr: np.ndarray) -> str:
    s = paired(base, rr)
    return (
        f"{s['diff']:+.3f} [{s['lo']:+.3f}, {s['hi']:+.3f}] p={s['p_boot']:.3f}; "
        f"{s['wins']}/{s['losses']} sign p={s['p_sign']:.2f}"
    )


def run(split: str, candidates: list[Params]) -> None:
    print(f"## {split} half\n")
    print(
        "| candidate | haystack | MRR@10 / R@10 | vs baseline: diff [95 % CI] boot p; "
        "wins/losses sign p | vs bm25s |"
    )
    print("|---|---:|---|---|---|")
    for haystack in HAYSTACKS:
        index, questions = index_for(haystack)
        qs = questions[split]
        ref = reference(index, haystack, qs)
        base = reciprocal_ranks(index, qs, BASE)
        print(f"| bm25s reference | {haystack:,} | {fmt(ref)} | {fmt_paired(base, ref)} | |")
        for p in candidates:
            rr = base if p == BASE else reciprocal_ranks(index, qs, p)
            row = fmt_paired(base, rr) if p != BASE else "—"
            print(
                f"| {p.label} | {haystack:,} | {fmt(rr)} | {row} | {rr.mean() - ref.mean():+.3f} |",
                flush=True,
            )


def ceiling() -> None:
    """Today's BM25 with an oracle that keeps only the target's repository (no haystack): how
    far ranking alone can go when every cross-repository confusion is removed."""
    index, questions = index_for(0)
    repo = np.array([d.path.split("/")[0] for d in index.docs])
    for split in ("tune", "test"):
        rr = []
        for row in questions[split]:
            q = make_query(row["terms"])
            scores = bm25_scores(index, dict.fromkeys(q.lexemes, 1.0), BASE)
            scores[repo != row["path"].split("/")[0]] = 0
            top = [int(i) for i in np.lexsort((index.ids, -scores))[:10]]
            target = index.by_path[row["path"]]
            rr.append(1.0 / (top.index(target) + 1) if target in top else 0.0)
        print(f"{split}: BM25 inside the target's repository only: MRR@10 {np.mean(rr):.3f}")


def main() -> None:
    which = sys.argv[1] if len(sys.argv) > 1 else "tune"
    if which == "tune":
        run("tune", CANDIDATES)
    elif which == "test":
        run("test", [BASE, *FINALISTS])
    elif which == "ceiling":
        ceiling()
    else:
        sys.exit("usage: experiments.py tune|test|ceiling")


if __name__ == "__main__":
    main()
