"""Known-item retrieval evaluation on a folder of ADRs (used by a test and bench/retrieval_eval.py).

Each ADR file becomes one decision (title = its first heading, body = the file). Questions written
by hand name the file they should find; recall@10 and MRR are computed for full-text only,
vector only and hybrid retrieval through the same code path as the context endpoint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from apps.records import services as record_services
from apps.records.models import Record
from apps.retrieval import search
from apps.retrieval import services as retrieval_services

_HEADING = re.compile(r"^#\s+(.+?)\s*#*\s*$", re.MULTILINE)


def adr_title(text: str, fallback: str) -> str:
    match = _HEADING.search(text)
    title = match.group(1).strip() if match else fallback
    return title[:200] or fallback


def load_adrs(*, space, actor, root: Path, manifest_paths: list[str]) -> dict[str, int]:
    """Create one record per ADR through the record service; returns {path: record id}."""
    ids: dict[str, int] = {}
    for rel in manifest_paths:
        text = (root / rel).read_text(encoding="utf-8", errors="replace").replace("\x00", "")
        record = record_services.record_create(
            space=space,
            kind=Record.Kind.DECISION,
            title=adr_title(text, Path(rel).stem),
            body=text[: record_services.MAX_BODY_CHARS],
            status=Record.Status.ACCEPTED,
            source_path=rel[:500],
            actor=actor,
        )
        ids[rel] = record.pk
    for start in range(0, len(ids), 256):
        retrieval_services.embed_records(record_ids=list(ids.values())[start : start + 256])
    return ids


def adr_paths(root: Path) -> list[str]:
    """The ADRs listed in the corpus manifest (kind `adr`)."""
    rows = (root / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    header = rows[0].split("\t")
    path_col, kind_col = header.index("local_path"), header.index("kind")
    return [r.split("\t")[path_col] for r in rows[1:] if r.split("\t")[kind_col] == "adr"]


def read_questions(path: Path) -> list[tuple[str, str]]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            question, expected = line.split("\t")
            out.append((question.strip(), expected.strip()))
    return out


@dataclass
class Scores:
    mode: str
    recall_at_10: float
    mrr: float
    n: int


def evaluate(*, space_ids: list[int], ids: dict[str, int], questions, mode: str) -> Scores:
    hits10 = 0
    reciprocal = 0.0
    for question, expected in questions:
        ranked = [
            h.record_id
            for h in search.hybrid_search(
                space_ids=space_ids, query=question, mode=mode, limit=10
            ).hits
        ]
        target = ids[expected]
        if target in ranked:
            hits10 += 1
            reciprocal += 1.0 / (ranked.index(target) + 1)
    n = len(questions)
    return Scores(mode=mode, recall_at_10=hits10 / n, mrr=reciprocal / n, n=n)
