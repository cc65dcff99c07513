"""The distractor records of the benchmarks: text drawn from the ADR corpus's titles and
sentences by a seeded generator, the same draws in the same order for whoever asks, so
`context_load.py` (rows in PostgreSQL) and `quality/data.py` (texts in Python) hold the same
records for one seed. No Django here: the quality scripts import it without a database."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

KINDS = [
    ("decision", "DEC", 0.7),
    ("constraint", "CON", 0.12),
    ("intent", "INT", 0.1),
    ("guardrail", "GRD", 0.08),
]
AREAS = [
    "billing",
    "search",
    "auth",
    "payments",
    "infra",
    "frontend",
    "ledger",
    "notifications",
    "reports",
    "ingest",
    "export",
    "admin",
]


def corpus_text(corpus: Path) -> tuple[list[str], list[str]]:
    """The corpus's sentences (40 to 300 characters, no links) and titles."""
    sentences, titles = [], []
    for path in corpus.rglob("*.md"):
        text = path.read_text(encoding="utf-8", errors="replace")
        match = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
        if match:
            titles.append(match.group(1).strip()[:150])
        for s in re.split(r"(?<=[.!?])\s+", re.sub(r"\s+", " ", text)):
            if 40 <= len(s) <= 300 and "http" not in s:
                sentences.append(s)
    return sentences, titles


@dataclass
class Draw:
    """One distractor record's drawn fields."""

    kind: str
    number: int
    key: str
    anchors: list[str]
    title: str
    summary: str
    body: str
    review_in_days: int
    freshness: str


def draws(
    n: int, rng: random.Random, corpus: Path, counters: dict[str, int] | None = None
) -> Iterator[Draw]:
    """`n` records, numbered on from `counters` (kind → last number; updated in place)."""
    sentences, titles = corpus_text(corpus)
    counters = counters if counters is not None else {k: 0 for k, _, _ in KINDS}
    for _ in range(n):
        kind, prefix, _ = rng.choices(KINDS, weights=[w for *_, w in KINDS])[0]
        counters[kind] += 1
        area = rng.choice(AREAS)
        anchors = [f"services/{area}/**"] if rng.random() < 0.03 else []
        yield Draw(
            kind=kind,
            number=counters[kind],
            key=f"{prefix}-{counters[kind]}",
            anchors=anchors,
            title=f"{rng.choice(titles)} ({area})"[:200],
            summary=rng.choice(sentences)[:300],
            body=" ".join(rng.sample(sentences, rng.randint(4, 14))),
            review_in_days=rng.randint(-30, 300),
            freshness=rng.choices(["fresh", "due", "stale"], weights=[85, 5, 10])[0],
        )
