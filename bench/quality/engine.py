"""The engine's lexical ranking reimplemented in Python (numpy), with the candidate changes as
options, plus the metrics and paired tests used by `experiments.py`.

Faithful to apps/retrieval/lexical.py and search.py at their defaults: the record's
`search_vector` as stored (cached by `data.py`), every position counting once (WEIGHT_A =
WEIGHT_B = 1), the record's length the number of positions, IDF = ln(1 + (N - df + 0.5) /
(df + 0.5)) over the spaces searched, tf·(k1+1) / (tf + k1·(1 - b + b·len/avglen)) per
distinct query lexeme, the exact top 50 (ties by id), then search._rank: scores relative to
the best, the 0.2 relevance floor, and the near-tie order (within 2 % of a run's best, records
having every query lexeme first, then the fresher ones).
"""

from __future__ import annotations

import itertools
import json
import math
import random
from dataclasses import dataclass, field, replace

import numpy as np
from data import CACHE, parse_tsvector

FTS_LIMIT = 50
LEXICAL_FLOOR = 0.2
FRESHNESS_TIE = 0.02
FRESH_ORDER = {"fresh": 0, "due": 1, "suspect": 2, "stale": 3}
FIELDS = "ABC"  # key+title, summary+tags, body


@dataclass
class Doc:
    id: int
    path: str | None  # None for a distractor
    fresh: str
    terms: dict[str, list[tuple[int, str]]]


@dataclass
class Index:
    docs: list[Doc]
    # lexeme -> (doc indexes, tf per field [3, n]) ; lengths per field [3, N]
    postings: dict[str, tuple[np.ndarray, np.ndarray]]
    lengths: np.ndarray
    by_path: dict[str, int]
    ids: np.ndarray

    @property
    def n(self) -> int:
        return len(self.docs)


def build_index(docs: list[Doc]) -> Index:
    lists: dict[str, tuple[list[int], list[list[int]]]] = {}
    lengths = np.zeros((3, len(docs)))
    for i, doc in enumerate(docs):
        for lexeme, entries in doc.terms.items():
            tf = [0, 0, 0]
            for _pos, weight in entries or [(0, "D")]:
                # Weight D (none) only occurs for unpositioned entries: count as body.
                tf[FIELDS.index(weight) if weight in FIELDS else 2] += 1
            for f in range(3):
                lengths[f, i] += tf[f]
            idx, tfs = lists.setdefault(lexeme, ([], []))
            idx.append(i)
            tfs.append(tf)
    postings = {
        lex: (np.array(idx, dtype=np.int64), np.array(tfs, dtype=np.float64).T)
        for lex, (idx, tfs) in lists.items()
    }
    by_path = {d.path: i for i, d in enumerate(docs) if d.path}
    return Index(docs, postings, lengths, by_path, np.array([d.id for d in docs]))


def load_docs(haystack: int = 0) -> tuple[list[Doc], dict[str, list[dict]]]:
    data = json.loads((CACHE / "adrs.json").read_text())
    docs = [Doc(d["id"], d["path"], "fresh", parse_tsvector(d["vector"])) for d in data["docs"]]
    if haystack:
        hay = json.loads((CACHE / f"haystack_{haystack}.json").read_text())
        base = max(d.id for d in docs) + 1
        docs += [
            Doc(base + j, None, h["fresh"], parse_tsvector(h["vector"])) for j, h in enumerate(hay)
        ]
    questions = {}
    for split, rows in data["questions"].items():
        questions[split] = [
            {"q": r["q"], "path": r["path"], "terms": parse_tsvector(r["vector"])} for r in rows
        ]
    return docs, questions


@dataclass(frozen=True)
class Params:
    k1: float = 1.5
    b: float = 0.75
    # BM25F: weight of one occurrence per field (A key/title, B summary/tags, C body) and the
    # length normalisation per field (None: one bag, b over the whole record, as the engine).
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    field_b: tuple[float, float, float] | None = None
    # Query lexemes dropped before scoring (task phrasing).
    drop: frozenset[str] = frozenset()
    # Query lexemes kept but their IDF multiplied by this (0 = dropped).
    noise_weight: float = 1.0
    # Query lexemes with df/N above this are dropped (None: none).
    max_df_share: float | None = None
    # Proximity: weight of the BM25 score of adjacent query-lexeme pairs (bigrams) found
    # adjacent (or within `window` positions) in the record; 0 = off.
    bigram: float = 0.0
    window: int = 1
    # Pseudo-relevance feedback (RM3-like): expand with `prf_terms` lexemes of the top
    # `prf_docs` records, weight `prf_weight` of the original query mass; 0 = off.
    prf_docs: int = 0
    prf_terms: int = 10
    prf_weight: float = 0.0
    # Coverage: multiply by (matched / lexemes) ** coverage.
    coverage: float = 0.0
    # Title-only bonus: weight of a separate BM25 over field A alone; 0 = off.
    title_bonus: float = 0.0
    # IDF exponent (1 = BM25).
    idf_power: float = 1.0
    # BM25+ (Lv & Zhai 2011): delta added to the term-frequency part of every matched lexeme.
    delta: float = 0.0
    # Query term frequency: a lexeme the question repeats counts that many times (k3 = inf).
    qtf: bool = False
    # Passage score (rerank of the top candidates): weight of the best window of `passage_len`
    # positions, BM25-like over the window's term counts; 0 = off.
    passage: float = 0.0
    passage_len: int = 50
    # Engine post-processing (floor and near-tie order) on/off.
    post: bool = True
    label: str = ""

    def but(self, **kw) -> Params:
        return replace(self, **kw)


@dataclass
class Query:
    lexemes: list[str]  # distinct, in order of first position
    positions: dict[str, list[int]] = field(default_factory=dict)


def make_query(terms: dict[str, list[tuple[int, str]]]) -> Query:
    positions = {lex: sorted(p for p, _w in entries) for lex, entries in terms.items()}
    order = sorted(positions, key=lambda lex: (positions[lex][0] if positions[lex] else 0, lex))
    return Query(order, positions)


def idf(n: int, df: float) -> float:
    return math.log(1 + (n - df + 0.5) / (df + 0.5))


def _term_scores(index: Index, lexeme: str, p: Params, avg: np.ndarray):
    """(doc indexes, BM25 share before IDF) of one lexeme."""
    idx, tf = index.postings[lexeme]
    w = np.array(p.weights)[:, None]
    if p.field_b is None:
        total_len = (index.lengths * np.array(p.weights)[:, None]).sum(axis=0)
        avgdl = total_len.mean()
        t = (tf * w).sum(axis=0)
        norm = 1 - p.b + p.b * total_len[idx] / avgdl
        return idx, t * (p.k1 + 1) / (t + p.k1 * norm) + p.delta
    fb = np.array(p.field_b)[:, None]
    lens = index.lengths[:, idx]
    norm = 1 - fb + fb * lens / np.maximum(avg[:, None], 1e-9)
    t = (w * tf / norm).sum(axis=0)
    return idx, t * (p.k1 + 1) / (t + p.k1) + p.delta


def bm25_scores(index: Index, weighted: dict[str, float], p: Params) -> np.ndarray:
    """Scores of every record for lexemes with query weights (1.0 = a plain query lexeme)."""
    scores = np.zeros(index.n)
    avg = index.lengths.mean(axis=1)
    for lexeme, qw in weighted.items():
        if lexeme not in index.postings or qw == 0:
            continue
        df = len(index.postings[lexeme][0])
        term_idf = idf(index.n, df) ** p.idf_power
        idx, share = _term_scores(index, lexeme, p, avg)
        scores[idx] += qw * term_idf * share
    return scores


def _query_weights(index: Index, q: Query, p: Params) -> dict[str, float]:
    out = {}
    for lex in q.lexemes:
        if lex in p.drop:
            if p.noise_weight == 0:
                continue
            out[lex] = p.noise_weight
            continue
        share = len(index.postings[lex][0]) / index.n if lex in index.postings else 0.0
        if p.max_df_share is not None and share > p.max_df_share:
            continue
        out[lex] = float(len(q.positions.get(lex) or [1])) if p.qtf else 1.0
    return out


def _bigram_scores(index: Index, q: Query, p: Params, cand: np.ndarray) -> np.ndarray:
    """BM25 of the query's adjacent lexeme pairs treated as terms (a pair occurs where the two
    lexemes stand within `window` positions in the record, either order), for `cand` only;
    the pair's df counted over all records."""
    pairs = []
    order = sorted(
        ((pos, lex) for lex, ps in q.positions.items() for pos in ps if lex not in p.drop)
    )
    for (p1, l1), (p2, l2) in itertools.pairwise(order):
        if l1 != l2 and p2 - p1 <= 2:  # adjacent in the query (a stop word may sit between)
            pairs.append((l1, l2))
    out = np.zeros(len(cand))
    if not pairs:
        return out
    total_len = index.lengths.sum(axis=0)
    avgdl = total_len.mean()
    for l1, l2 in dict.fromkeys(pairs):
        if l1 not in index.postings or l2 not in index.postings:
            continue
        common = np.intersect1d(index.postings[l1][0], index.postings[l2][0])
        tfs = {}
        for i in common:
            a = [x for x, _ in index.docs[i].terms[l1]]
            b = [x for x, _ in index.docs[i].terms[l2]]
            c = _near(a, b, p.window)
            if c:
                tfs[int(i)] = c
        if not tfs:
            continue
        pair_idf = idf(index.n, len(tfs))
        for j, i in enumerate(cand):
            c = tfs.get(int(i))
            if c:
                norm = 1 - p.b + p.b * total_len[i] / avgdl
                out[j] += pair_idf * c * (p.k1 + 1) / (c + p.k1 * norm)
    return out


def _passage_scores(
    index: Index, weights: dict[str, float], p: Params, cand: np.ndarray
) -> np.ndarray:
    """The best window of passage_len positions of each candidate: sum over the query's
    lexemes of weight·IDF·c(k1+1)/(c+k1), c the lexeme's occurrences in the window."""
    term_idf = {
        lex: idf(index.n, len(index.postings[lex][0])) for lex in weights if lex in index.postings
    }
    out = np.zeros(len(cand))
    for j, i in enumerate(cand):
        terms = index.docs[i].terms
        occ = sorted(
            (pos, lex) for lex in term_idf if lex in terms for pos, _w in terms[lex] or [(0, "D")]
        )
        counts: dict[str, int] = {}
        best, lo = 0.0, 0
        for pos, lex in occ:
            counts[lex] = counts.get(lex, 0) + 1
            while occ[lo][0] <= pos - p.passage_len:
                counts[occ[lo][1]] -= 1
                lo += 1
            s = sum(
                weights[x] * term_idf[x] * c * (p.k1 + 1) / (c + p.k1)
                for x, c in counts.items()
                if c
            )
            best = max(best, s)
        out[j] = best
    return out


def _near(a: list[int], b: list[int], window: int) -> int:
    bs = set(b)
    return sum(1 for x in a if any((x + d) in bs or (x - d) in bs for d in range(1, window + 1)))


def _prf(index: Index, base: np.ndarray, weights: dict[str, float], p: Params) -> dict[str, float]:
    """RM3-like expansion: the top prf_docs records' lexemes weighted by the records' relative
    scores and their in-record frequency, times IDF; the prf_terms best added with total weight
    prf_weight times the original weights' sum."""
    top = np.argsort(-base, kind="stable")[: p.prf_docs]
    top = [i for i in top if base[i] > 0]
    if not top:
        return weights
    mass: dict[str, float] = {}
    z = sum(math.exp(base[i] - base[top[0]]) for i in top)
    for i in top:
        doc = index.docs[i]
        dl = sum(len(e) or 1 for e in doc.terms.values())
        rel = math.exp(base[i] - base[top[0]]) / z
        for lex, entries in doc.terms.items():
            if lex in p.drop:
                continue
            mass[lex] = mass.get(lex, 0.0) + rel * (len(entries) or 1) / dl
    scored = {
        lex: m * idf(index.n, len(index.postings[lex][0]))
        for lex, m in mass.items()
        if lex not in weights
    }
    best = sorted(scored, key=lambda lex: -scored[lex])[: p.prf_terms]
    z2 = sum(scored[lex] for lex in best) or 1.0
    out = dict(weights)
    total = sum(weights.values())
    for lex in best:
        out[lex] = out.get(lex, 0.0) + p.prf_weight * total * scored[lex] / z2
    return out


def rank(index: Index, q: Query, p: Params) -> list[int]:
    """Record indexes of the top 10 as the engine would return them."""
    weights = _query_weights(index, q, p)
    scores = bm25_scores(index, weights, p)
    if p.title_bonus:
        title_p = p.but(weights=(1.0, 0.0, 0.0), field_b=(0.75, 0.0, 0.0))
        scores = scores + p.title_bonus * bm25_scores(index, weights, title_p)
    if p.prf_docs and p.prf_weight:
        scores = bm25_scores(index, _prf(index, scores, weights, p), p)
    matched = np.zeros(index.n, dtype=np.int64)
    for lex in q.lexemes:
        if lex in index.postings:
            matched[index.postings[lex][0]] += 1
    if p.coverage:
        scores = scores * (matched / max(len(q.lexemes), 1)) ** p.coverage
    # The exact top FTS_LIMIT, ties by id (ids ascend with the index for the ADRs and haystack).
    hit = np.nonzero(scores > 0)[0]
    if p.bigram and len(hit):
        pre = hit[np.lexsort((index.ids[hit], -scores[hit]))][: FTS_LIMIT * 4]
        scores = scores.copy()
        scores[pre] += p.bigram * _bigram_scores(index, q, p, pre)
    if p.passage and len(hit):
        pre = hit[np.lexsort((index.ids[hit], -scores[hit]))][:FTS_LIMIT]
        scores = scores.copy()
        scores[pre] += p.passage * _passage_scores(index, weights, p, pre)
    top = hit[np.lexsort((index.ids[hit], -scores[hit]))][:FTS_LIMIT]
    if not p.post or not len(top):
        return [int(i) for i in top[:10]]
    best = scores[top[0]]
    n_lex = len(q.lexemes)
    kept = [int(i) for i in top if scores[i] >= LEXICAL_FLOOR * best]
    return _near_tie(index, kept, scores / best, matched, n_lex)[:10]


def _near_tie(index, kept, raw, matched, n_lex) -> list[int]:
    out, run = [], []
    for i in [*kept, None]:
        if run and (i is None or raw[i] < raw[run[0]] * (1 - FRESHNESS_TIE)):
            run.sort(
                key=lambda j: (
                    not matched[j] >= n_lex,
                    FRESH_ORDER.get(index.docs[j].fresh, 0),
                    -raw[j],
                )
            )
            out.extend(run)
            run = []
        if i is not None:
            run.append(i)
    return out


def reciprocal_ranks(index: Index, questions: list[dict], p: Params) -> np.ndarray:
    out = []
    for row in questions:
        target = index.by_path[row["path"]]
        ranked = rank(index, make_query(row["terms"]), p)
        out.append(1.0 / (ranked.index(target) + 1) if target in ranked else 0.0)
    return np.array(out)


def paired(a: np.ndarray, b: np.ndarray, n_boot: int = 10000, seed: int = 1) -> dict:
    """b - a: mean difference, 95 % bootstrap interval, one-sided bootstrap p (share of
    resamples with difference <= 0), and a two-sided sign test over questions that differ."""
    d = b - a
    rng = random.Random(seed)
    n = len(d)
    means = []
    for _ in range(n_boot):
        means.append(sum(d[rng.randrange(n)] for _ in range(n)) / n)
    means.sort()
    wins, losses = int((d > 1e-12).sum()), int((d < -1e-12).sum())
    m = wins + losses
    k = min(wins, losses)
    sign_p = min(1.0, 2 * sum(math.comb(m, i) for i in range(k + 1)) / 2**m) if m else 1.0
    return {
        "diff": float(d.mean()),
        "lo": means[int(0.025 * n_boot)],
        "hi": means[int(0.975 * n_boot) - 1],
        "p_boot": sum(1 for x in means if x <= 0) / n_boot,
        "wins": wins,
        "losses": losses,
        "p_sign": sign_p,
    }


def recall(rr: np.ndarray) -> float:
    return float((rr > 0).mean())


if __name__ == "__main__":
    # The faithfulness check: the engine's own tune/test figures at haystack 0 (0.880, 0.876).
    docs, qs = load_docs()
    index = build_index(docs)
    for split in ("tune", "test"):
        rr = reciprocal_ranks(index, qs[split], Params())
        print(f"{split}: MRR@10 {rr.mean():.3f} R@10 {recall(rr):.3f}")
