"""Retrieval quality at scale: MRR@10 and recall@10 of known-item questions over the ADR corpus,
with N distractor records in a second visible space.

    DATABASE_URL=postgres://…/ckb_eval .venv/bin/python bench/retrieval_eval.py \
        [--questions bench/questions/tasks_test.tsv] [--haystack 100000] [--grid]

Uses its own database (DATABASE_URL, migrated here) like bench/context_load.py, whose loader
fills the distractor space (synthetic records made of ADR sentences and titles; a database
holds one haystack size: the loader only adds). The ADR corpus (../shared/corpora/adr) goes
into a space of its own through the record services (once; later runs reuse it). Each question
names the ADR file it should find. Reported for: the engine (hybrid), full text (BM25 in
PostgreSQL) alone, vectors alone, and an Okapi BM25 reference computed outside PostgreSQL by
`bm25s` (k1 1.5, b 0.75, English stop words and Snowball stemmer) over the same texts.
`--grid` tries other BM25 parameters on the same questions (use the tuning file, never the test
file, for choosing; it rebuilds the postings of the ADR space only, so use it with no haystack).
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contextkb.settings")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--questions",
        type=Path,
        default=ROOT / "bench" / "questions" / "tasks_test.tsv",
        help="question<TAB>ADR path file (tune on tasks_tune.tsv, report tasks_test.tsv)",
    )
    parser.add_argument("--haystack", type=int, default=0, help="distractor records")
    parser.add_argument(
        "--modes", default="hybrid,fulltext,vector", help="comma-separated engine modes"
    )
    parser.add_argument("--no-reference", action="store_true", help="skip the bm25s reference")
    parser.add_argument("--grid", action="store_true", help="try other BM25 parameters")
    parser.add_argument(
        "--k1-b",
        default="",
        help="query-time BM25 parameters to try, e.g. '1.5,0.75;1.2,0.5' (no rebuild needed)",
    )
    parser.add_argument(
        "--fusion-grid",
        action="store_true",
        help="hybrid with reciprocal-rank fusion at several vector weights",
    )
    return parser


ARGS = build_parser().parse_args() if __name__ == "__main__" else None

import context_load  # noqa: E402 - sets Django up (and insists on DATABASE_URL)
from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from apps.accounts.models import Membership, Space, User  # noqa: E402
from apps.records.models import Record  # noqa: E402
from apps.retrieval import bm25, evaluation, lexical, search  # noqa: E402

CORPUS = Path(settings.BASE_DIR).parent / "shared" / "corpora" / "adr"
ADR_SLUG = "adr-eval"


def adr_space() -> tuple[Space, dict[str, int]]:
    """The ADR corpus in a space of its own, loaded through the record services once."""
    paths = evaluation.adr_paths(CORPUS)
    space, _ = Space.objects.get_or_create(slug=ADR_SLUG, defaults={"name": "ADR corpus"})
    have = dict(
        Record.objects.filter(space=space, archived_at__isnull=True).values_list(
            "source_path", "pk"
        )
    )
    if len(have) < len(paths):
        Record.objects.filter(space=space).delete()
        user, _ = User.objects.get_or_create(
            username="adr-eval", defaults={"email": "adr-eval@example.com"}
        )
        Membership.objects.get_or_create(user=user, space=space, defaults={"role": "editor"})
        t0 = time.perf_counter()
        have = evaluation.load_adrs(space=space, actor=user, root=CORPUS, manifest_paths=paths)
        print(f"loaded {len(have)} ADRs in {time.perf_counter() - t0:.0f}s", flush=True)
    return space, have


def texts_of(space_ids: list[int]):
    """(id, text) of every active record of the spaces: the texts the reference indexes."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT id, concat_ws(' ', key, title, summary, array_to_string(tags, ' '), body)
               FROM records_record WHERE space_id = ANY(%s) AND archived_at IS NULL
               ORDER BY id""",
            [space_ids],
        )
        return cursor.fetchall()


def reference(space_ids: list[int], ids: dict[str, int], questions) -> evaluation.Scores:
    import bm25s
    import Stemmer

    rows = texts_of(space_ids)
    doc_ids = [r[0] for r in rows]
    stemmer = Stemmer.Stemmer("english")
    t0 = time.perf_counter()
    retriever = bm25s.BM25(k1=1.5, b=0.75)
    retriever.index(
        bm25s.tokenize([r[1] for r in rows], stopwords="en", stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    del rows
    print(f"  reference index of {len(doc_ids)} texts in {time.perf_counter() - t0:.0f}s")
    tokens = bm25s.tokenize(
        [q for q, _ in questions], stopwords="en", stemmer=stemmer, show_progress=False
    )
    results, _scores = retriever.retrieve(tokens, k=10, show_progress=False)
    hits = reciprocal = 0.0
    for (_question, expected), row in zip(questions, results, strict=True):
        ranked = [doc_ids[i] for i in row]
        if ids[expected] in ranked:
            hits += 1
            reciprocal += 1 / (ranked.index(ids[expected]) + 1)
    n = len(questions)
    return evaluation.Scores(mode="bm25s", recall_at_10=hits / n, mrr=reciprocal / n, n=n)


def run_modes(space_ids, ids, questions, modes) -> list[str]:
    out = []
    for mode in modes:
        t0 = time.perf_counter()
        s = evaluation.evaluate(space_ids=space_ids, ids=ids, questions=questions, mode=mode)
        ms = (time.perf_counter() - t0) * 1000 / len(questions)
        out.append(f"{mode:<9} MRR@10 {s.mrr:.3f}  R@10 {s.recall_at_10:.3f}  ({ms:.0f} ms/q)")
    return out


def main(args: argparse.Namespace) -> None:
    call_command("migrate", verbosity=0)
    questions = evaluation.read_questions(args.questions)
    space, ids = adr_space()
    missing = [p for _, p in questions if p not in ids]
    if missing:
        sys.exit(f"{len(missing)} expected files are not in the corpus, e.g. {missing[0]}")
    space_ids = [space.pk]
    if args.haystack:
        import random

        hay = Space.objects.filter(slug=context_load.SLUG).first()
        if hay is None or Record.objects.filter(space=hay).count() < args.haystack:
            hay, _token = context_load.load(args.haystack, random.Random(42))
        count = Record.objects.filter(space=hay).count()
        if count != args.haystack:
            print(f"note: the haystack space holds {count} records, not {args.haystack}")
        space_ids.append(hay.pk)
    n_records = Record.objects.filter(space_id__in=space_ids, archived_at__isnull=True).count()
    print(
        f"{len(questions)} questions ({args.questions.name}); {n_records} records in "
        f"{len(space_ids)} spaces; provider {settings.CONTEXTKB_EMBEDDINGS_PROVIDER}"
    )
    modes = [m for m in args.modes.split(",") if m]
    for line in run_modes(space_ids, ids, questions, modes):
        print("  " + line)
    if not args.no_reference:
        ref = reference(space_ids, ids, questions)
        print(f"  bm25s     MRR@10 {ref.mrr:.3f}  R@10 {ref.recall_at_10:.3f}")
    for pair in [p for p in args.k1_b.split(";") if p]:
        bm25.K1, bm25.B = (float(x) for x in pair.split(","))
        s = evaluation.evaluate(space_ids=space_ids, ids=ids, questions=questions, mode="fulltext")
        print(f"  k1={bm25.K1} b={bm25.B}: MRR@10 {s.mrr:.3f} R@10 {s.recall_at_10:.3f}")
    if args.fusion_grid:
        settings.CONTEXTKB_DENSE_FUSION = "rrf"
        for weight in (0.25, 0.5, 1.0):
            search.VEC_WEIGHT = weight
            s = evaluation.evaluate(
                space_ids=space_ids, ids=ids, questions=questions, mode="hybrid"
            )
            print(f"  rrf, vector weight {weight}: MRR@10 {s.mrr:.3f} R@10 {s.recall_at_10:.3f}")
    if args.grid:
        if args.haystack:
            sys.exit("--grid rebuilds the ADR space's postings only: run it without a haystack")
        default = (bm25.K1, bm25.B, lexical.WEIGHT_A, lexical.WEIGHT_B)
        grid = [
            (k1, b, wa, wb)
            for k1 in (0.9, 1.2, 1.5, 2.0)
            for b in (0.5, 0.75, 0.9)
            for wa, wb in ((1, 1), (3, 1.5))
        ]
        results = []
        for k1, b, wa, wb in grid:
            bm25.K1, bm25.B, lexical.WEIGHT_A, lexical.WEIGHT_B = k1, b, wa, wb
            lexical.rebuild([space.pk])
            s = evaluation.evaluate(
                space_ids=space_ids, ids=ids, questions=questions, mode="fulltext"
            )
            results.append((s.mrr, s.recall_at_10, k1, b, wa, wb))
            print(f"  k1={k1} b={b} A={wa} B={wb}: MRR@10 {s.mrr:.3f} R@10 {s.recall_at_10:.3f}")
        best = max(results)
        print(f"best: k1={best[2]} b={best[3]} A={best[4]} B={best[5]} MRR@10 {best[0]:.3f}")
        print(f"median MRR@10 over the grid {statistics.median(r[0] for r in results):.3f}")
        bm25.K1, bm25.B, lexical.WEIGHT_A, lexical.WEIGHT_B = default
        lexical.rebuild([space.pk])


if __name__ == "__main__":
    main(ARGS)
