"""Does a dense leg earn its place? BM25 alone against BM25 fused with embedding models, on the
task-style questions (tune and test halves), with per-question wins/losses and a paired
bootstrap.

    # 1. the ADR corpus in its own database (as bench/retrieval_eval.py), texts exported:
    DATABASE_URL=postgres://…/ckb_eval .venv/bin/python bench/dense_eval.py --export /tmp/dense
    # 2. (optional) other models embed /tmp/dense/texts.jsonl outside the product venv and write
    #    /tmp/dense/<name>.npz (see bench/dense_embed_st.py for sentence-transformers models)
    # 3. evaluate: the engine's BM25 list, fused with each model's list
    DATABASE_URL=… .venv/bin/python bench/dense_eval.py --export /tmp/dense --models wordllama,minilm

The BM25 list is the engine's own (`hybrid_search(mode="fulltext")`, its first FTS_LIMIT
records); each model's list is the exact cosine ranking of every record (its first VEC_LIMIT),
computed here from the vectors, so models need not be the configured provider. Fusion is the
engine's weighted reciprocal-rank fusion (search.RRF_K), and `fallback` is the default
(vectors only when the BM25 list is empty). A model's file may hold several vectors per record
(chunks; `owner` maps each to its record): the record's similarity is its best chunk's.
Settings are chosen on the tune half; the test half is read once with them fixed.
"""

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contextkb.settings")

import numpy as np  # noqa: E402
import retrieval_eval  # noqa: E402 - sets Django up (and insists on DATABASE_URL)
from django.core.management import call_command  # noqa: E402

from apps.records.models import Record  # noqa: E402
from apps.retrieval import evaluation, search  # noqa: E402
from apps.retrieval import services as retrieval_services  # noqa: E402

QUESTIONS = ROOT / "bench" / "questions"
WEIGHTS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5)


def export(folder: Path, ids: dict[str, int], splits: dict) -> None:
    """texts.jsonl (record id, embedding text) and questions.jsonl for outside embedders."""
    folder.mkdir(parents=True, exist_ok=True)
    records = Record.objects.filter(pk__in=ids.values()).order_by("pk")
    with (folder / "texts.jsonl").open("w") as out:
        for record in records:
            text = retrieval_services.embedding_text(record)
            out.write(json.dumps({"id": record.pk, "text": text}) + "\n")
    with (folder / "questions.jsonl").open("w") as out:
        for split, questions in splits.items():
            for question, expected in questions:
                out.write(json.dumps({"split": split, "q": question, "id": ids[expected]}) + "\n")


def wordllama_vectors(folder: Path) -> Path:
    """The default provider's vectors, computed in process (timed per record and per query)."""
    from apps.retrieval.providers import WordLlamaProvider

    provider = WordLlamaProvider()
    texts = [json.loads(line) for line in (folder / "texts.jsonl").open()]
    questions = [json.loads(line)["q"] for line in (folder / "questions.jsonl").open()]
    provider.embed(["warm up"])
    t0 = time.perf_counter()
    docs = provider.embed([t["text"] for t in texts])
    per_record = (time.perf_counter() - t0) * 1000 / len(texts)
    t0 = time.perf_counter()
    queries = [provider.embed([q])[0] for q in questions]
    per_query = (time.perf_counter() - t0) * 1000 / len(questions)
    path = folder / "wordllama.npz"
    np.savez(
        path,
        owner=np.array([t["id"] for t in texts]),
        docs=np.asarray(docs, dtype=np.float32),
        queries=np.asarray(queries, dtype=np.float32),
        ms_per_record=per_record,
        ms_per_query=per_query,
    )
    return path


def dense_lists(path: Path, n_questions: int) -> tuple[list[list[tuple[int, float]]], dict]:
    """For each question (questions.jsonl order): [(record id, cosine)] best first."""
    data = np.load(path)
    owner, docs, queries = data["owner"], data["docs"], data["queries"]
    assert len(queries) == n_questions, f"{path}: {len(queries)} queries, {n_questions} questions"
    sims = queries @ docs.T  # unit vectors
    records = np.unique(owner)
    out = []
    for row in sims:
        best = {}
        for rid, sim in zip(owner.tolist(), row.tolist(), strict=True):
            if sim > best.get(rid, -2.0):
                best[rid] = sim
        out.append(sorted(best.items(), key=lambda kv: (-kv[1], kv[0])))
    meta = {
        "chunks": len(owner),
        "records": len(records),
        "ms_per_record": float(data["ms_per_record"]) if "ms_per_record" in data else None,
        "ms_per_query": float(data["ms_per_query"]) if "ms_per_query" in data else None,
    }
    return out, meta


def bm25_lists(space_ids: list[int], questions: list[str]) -> list[list[int]]:
    out = []
    for question in questions:
        result = search.hybrid_search(
            space_ids=space_ids, query=question, mode="fulltext", limit=search.FTS_LIMIT
        )
        hits = [h for h in [*result.hits, *result.below_floor] if h.fts_rank]
        out.append([h.record_id for h in sorted(hits, key=lambda h: h.fts_rank)])
    return out


def fuse(bm25: list[int], dense: list[tuple[int, float]], weight: float) -> list[int]:
    """The engine's weighted reciprocal-rank fusion of its two lists (weight = vector weight;
    0 = BM25 alone; None = fallback: vectors only when BM25 found nothing)."""
    vec = [rid for rid, _ in dense[: search.VEC_LIMIT]]
    if weight is None:
        return bm25 if bm25 else vec
    if weight == 0 or not vec:
        return bm25
    if not bm25:
        return vec
    score: dict[int, float] = {}
    for rank, rid in enumerate(bm25[: search.FTS_LIMIT], 1):
        score[rid] = score.get(rid, 0.0) + 1.0 / (search.RRF_K + rank)
    for rank, rid in enumerate(vec, 1):
        score[rid] = score.get(rid, 0.0) + weight / (search.RRF_K + rank)
    return sorted(score, key=lambda rid: (-score[rid], rid))


def reciprocal_ranks(rankings: list[list[int]], targets: list[int]) -> np.ndarray:
    out = []
    for ranked, target in zip(rankings, targets, strict=True):
        top = ranked[:10]
        out.append(1.0 / (top.index(target) + 1) if target in top else 0.0)
    return np.array(out)


def compare(rr: np.ndarray, base: np.ndarray, *, resamples: int = 10000) -> str:
    """Mean difference of MRR@10, a 95 % paired-bootstrap interval, and wins/losses."""
    diff = rr - base
    rng = np.random.default_rng(12)
    idx = rng.integers(0, len(diff), size=(resamples, len(diff)))
    means = diff[idx].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    p = min(1.0, 2 * min((means <= 0).mean(), (means >= 0).mean()))
    wins, losses = int((diff > 1e-9).sum()), int((diff < -1e-9).sum())
    return f"Δ {diff.mean():+.3f} [{lo:+.3f}, {hi:+.3f}] p≈{p:.3f}  +{wins}/-{losses}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--export", type=Path, required=True, help="folder for texts/vectors")
    parser.add_argument("--models", default="", help="comma-separated <name> (<folder>/<name>.npz)")
    parser.add_argument("--weights", default=",".join(map(str, WEIGHTS)))
    parser.add_argument("--choose", default="", help="name:weight to confirm on the test half")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    space, ids = retrieval_eval.adr_space()
    splits = {
        name: evaluation.read_questions(QUESTIONS / f"tasks_{name}.tsv")
        for name in ("tune", "test")
    }
    if not (args.export / "questions.jsonl").exists():
        export(args.export, ids, splits)
        print(f"exported texts and questions to {args.export}")
    rows = [json.loads(line) for line in (args.export / "questions.jsonl").open()]
    questions = [r["q"] for r in rows]
    targets = [r["id"] for r in rows]
    split_of = np.array([r["split"] for r in rows])

    t0 = time.perf_counter()
    bm25 = bm25_lists([space.pk], questions)
    print(f"BM25 lists: {(time.perf_counter() - t0) * 1000 / len(questions):.1f} ms/question")
    models = {}
    for name in [m for m in args.models.split(",") if m]:
        path = args.export / f"{name}.npz"
        if name == "wordllama" and not path.exists():
            path = wordllama_vectors(args.export)
        models[name] = dense_lists(path, len(questions))

    weights = [float(w) for w in args.weights.split(",") if w]
    for split in ("tune", "test"):
        mask = split_of == split
        sel = [i for i in range(len(rows)) if mask[i]]
        tgt = [targets[i] for i in sel]
        base = reciprocal_ranks([bm25[i] for i in sel], tgt)
        recall = np.mean([targets[i] in bm25[i][:10] for i in sel])
        print(f"\n== {split} ({len(sel)} questions)")
        print(f"  BM25 alone                  MRR@10 {base.mean():.3f}  R@10 {recall:.3f}")
        if split == "test" and not args.choose:
            print("  (the test half: give --choose name:weight, chosen on the tune half)")
            continue
        for name, (dense, meta) in models.items():
            timing = ""
            if meta["ms_per_query"] is not None:
                timing = (
                    f" [{meta['ms_per_query']:.1f} ms/query, {meta['ms_per_record']:.1f} ms/record]"
                )
            print(f"  -- {name}: {meta['chunks']} vectors for {meta['records']} records{timing}")
            candidates = [("alone", "vector")] + [
                (f"rrf w={w}", w) for w in weights if split == "tune"
            ]
            if split == "tune":
                candidates.append(("fallback", None))
            else:
                chosen, weight = args.choose.split(":")
                if chosen != name:
                    candidates = [("alone", "vector")]
                else:
                    candidates.append((f"rrf w={weight} (chosen)", float(weight)))
            for label, weight in candidates:
                if weight == "vector":
                    ranked = [[rid for rid, _ in dense[i]] for i in sel]
                else:
                    ranked = [fuse(bm25[i], dense[i], weight) for i in sel]
                rr = reciprocal_ranks(ranked, tgt)
                rec = np.mean([t in r[:10] for t, r in zip(tgt, ranked, strict=True)])
                print(
                    f"  {label:<26}  MRR@10 {rr.mean():.3f}  R@10 {rec:.3f}  "
                    f"vs BM25 {compare(rr, base)}"
                )


if __name__ == "__main__":
    random.seed(0)
    main()
