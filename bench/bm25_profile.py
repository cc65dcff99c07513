"""Time the exact BM25 top-k (apps.retrieval.bm25.top_k) alone on the context benchmark's
queries, per strategy, with the postings read and records scored.

    DATABASE_URL=postgres://…/ckb_bench .venv/bin/python bench/bm25_profile.py [--requests 400]
        [--k 50] [--exhaustive]

Uses the database `bench/context_load.py` filled (its `bench-100k` space; run that first).
`--exhaustive` scores every posting (the plan before pruning) for comparison, and `--check`
times both plans on each query in turn (so a busy machine slows both alike) and compares their
answers.
"""

import argparse
import random
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400, help="queries timed")
    parser.add_argument("--k", type=int, default=50, help="top k")
    parser.add_argument("--exhaustive", action="store_true", help="score every posting")
    parser.add_argument(
        "--check", action="store_true", help="time and compare with the exhaustive top k"
    )
    return parser


ARGS = build_parser().parse_args() if __name__ == "__main__" else None
sys.path.insert(0, str(Path(__file__).resolve().parent))

import context_load  # noqa: E402  (sets up Django on the benchmark database)

from apps.accounts.models import Space  # noqa: E402
from apps.retrieval import bm25, lexical, search  # noqa: E402


def main(args) -> None:
    space = Space.objects.get(slug=context_load.SLUG)
    queries = [q["q"] for q in context_load.make_queries(args.requests, random.Random(7))]
    if args.exhaustive:
        bm25.EXHAUSTIVE_MAX = 10**12

    def run(query):
        return bm25.top_k(
            fetch=search._fetch_prepared,
            space_ids=[space.pk],
            query=lexical.positive_terms(query),
            k=args.k,
        )

    for query in queries[:20]:  # warm-up
        run(query)
    times = defaultdict(list)
    allt, exhaustive_times = [], []
    mismatches = 0
    for query in queries:
        t0 = time.perf_counter()
        ranking = run(query)
        ms = (time.perf_counter() - t0) * 1000
        allt.append(ms)
        times[ranking.strategy.split(" (")[0]].append(ms)
        if args.check and not args.exhaustive:
            saved = bm25.EXHAUSTIVE_MAX
            bm25.EXHAUSTIVE_MAX = 10**12
            t0 = time.perf_counter()
            full = run(query)
            exhaustive_times.append((time.perf_counter() - t0) * 1000)
            bm25.EXHAUSTIVE_MAX = saved
            a = [(round(s, 9), i) for s, i in zip(ranking.scores, ranking.ids, strict=True)]
            b = [(round(s, 9), i) for s, i in zip(full.scores, full.ids, strict=True)]
            if a != b:
                mismatches += 1
                print("MISMATCH", query, ranking.strategy)

    def pct(values, p):
        values = sorted(values)
        return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]

    print(
        f"{len(allt)} queries, k {args.k}: p50 {pct(allt, 50):.1f} ms, p95 {pct(allt, 95):.1f} ms,"
        f" mean {statistics.mean(allt):.1f} ms"
    )
    for strategy, values in sorted(times.items()):
        print(
            f"  {strategy}: {len(values)} queries, p50 {pct(values, 50):.1f} ms,"
            f" p95 {pct(values, 95):.1f} ms"
        )
    if args.check:
        print(
            f"every posting scored, same queries in turn: p50 {pct(exhaustive_times, 50):.1f} ms,"
            f" p95 {pct(exhaustive_times, 95):.1f} ms,"
            f" mean {statistics.mean(exhaustive_times):.1f} ms"
        )
        print(f"answers different from the exhaustive top k: {mismatches}")


if __name__ == "__main__":
    main(ARGS)
