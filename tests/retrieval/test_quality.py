"""Retrieval quality on the real ADR corpus: known-item questions, recall@10 and MRR floors."""

from pathlib import Path

from apps.retrieval import evaluation
from tests.corpus import adr_corpus
from tests.factories import MembershipFactory, SpaceFactory

QUESTIONS = Path(__file__).with_name("adr_questions.tsv")

# (recall@10, MRR) floors a little under the figures measured on 2026-12-06 with 65 questions
# (BM25 in PostgreSQL, k1 1.5, b 0.75: full-text 0.908/0.733, vector 0.892/0.743, hybrid
# 0.908/0.733: the vector list only fills in when no record shares a word with the question;
# docs/benchmarks.md). These title paraphrases are where wordllama is strongest; on the
# task-style questions (bench/questions) fusing it lowered MRR@10.
FLOORS = {
    "fulltext": (0.88, 0.72),
    "vector": (0.87, 0.71),
    "hybrid": (0.88, 0.72),
}


def test_known_item_questions_on_the_adr_corpus(db):
    corpus = adr_corpus()
    space = SpaceFactory(slug="adr-corpus", name="ADR corpus")
    actor = MembershipFactory(space=space, role="editor").user
    ids = evaluation.load_adrs(
        space=space, actor=actor, root=corpus, manifest_paths=evaluation.adr_paths(corpus)
    )
    assert len(ids) >= 430
    questions = evaluation.read_questions(QUESTIONS)
    assert len(questions) >= 60

    scores = {
        mode: evaluation.evaluate(space_ids=[space.pk], ids=ids, questions=questions, mode=mode)
        for mode in ("fulltext", "vector", "hybrid")
    }

    for mode, (recall_floor, mrr_floor) in FLOORS.items():
        print(f"{mode}: recall@10={scores[mode].recall_at_10:.3f} mrr={scores[mode].mrr:.3f}")
        assert scores[mode].recall_at_10 >= recall_floor, mode
        assert scores[mode].mrr >= mrr_floor, mode
    hybrid = scores["hybrid"]
    for mode in ("fulltext", "vector"):
        assert hybrid.recall_at_10 >= scores[mode].recall_at_10, mode
        assert hybrid.mrr >= scores[mode].mrr - 0.02, mode
