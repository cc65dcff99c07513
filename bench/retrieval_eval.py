"""Retrieval quality on the ADR corpus: recall@10 and MRR for full-text, vector and hybrid.

    .venv/bin/python bench/retrieval_eval.py [--grid]

Loads ../shared/corpora/adr into a throwaway space inside a transaction that is rolled back
(nothing is left in the database), asks the hand-written known-item questions in
tests/retrieval/adr_questions.tsv and prints the figures. `--grid` also tries other full-text
normalisations and fusion weights (how the defaults in apps/retrieval/search.py were chosen).
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contextkb.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402

from apps.accounts.models import Membership, Space, User  # noqa: E402
from apps.retrieval import evaluation, search  # noqa: E402

CORPUS = Path(settings.BASE_DIR).parent / "shared" / "corpora" / "adr"
QUESTIONS = ROOT / "tests" / "retrieval" / "adr_questions.tsv"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grid", action="store_true")
    args = parser.parse_args()
    questions = evaluation.read_questions(QUESTIONS)
    with transaction.atomic():
        space = Space.objects.create(slug="adr-eval-tmp", name="ADR eval (temporary)")
        user = User.objects.create(username="adr-eval-tmp", email="adr-eval-tmp@example.com")
        Membership.objects.create(user=user, space=space, role="editor")
        started = time.perf_counter()
        ids = evaluation.load_adrs(
            space=space, actor=user, root=CORPUS, manifest_paths=evaluation.adr_paths(CORPUS)
        )
        print(
            f"loaded {len(ids)} ADRs in {time.perf_counter() - started:.1f}s; "
            f"{len(questions)} questions; provider {settings.CONTEXTKB_EMBEDDINGS_PROVIDER}"
        )
        grid = [(search.FTS_NORMALIZATION, search.FTS_WEIGHT, search.VEC_WEIGHT)]
        if args.grid:
            grid += [(n, f, v) for n in (0, 1, 2, 8, 32) for f, v in ((1, 1), (1, 1.5), (1, 2))]
        for norm, fw, vw in grid:
            search.FTS_NORMALIZATION, search.FTS_WEIGHT, search.VEC_WEIGHT = norm, fw, vw
            line = [f"norm={norm:<2} weights fts={fw} vec={vw}:"]
            for mode in ("fulltext", "vector", "hybrid"):
                s = evaluation.evaluate(
                    space_ids=[space.pk], ids=ids, questions=questions, mode=mode
                )
                line.append(f"{mode} R@10={s.recall_at_10:.3f} MRR={s.mrr:.3f}")
            print("  ".join(line))
        transaction.set_rollback(True)


if __name__ == "__main__":
    main()
