"""Check the task-style question files against the ADR corpus.

Usage: python bench/questions/check.py [--corpus PATH]

Checks, for tasks_tune.tsv and tasks_test.tsv:
- every line after the `#` header is `question<TAB>path` and the path exists in the corpus;
- no question appears twice (within or across the two files, compared case- and space-insensitively);
- each ADR's questions sit in the split the rule gives (sha256 of the path, odd -> test, even -> tune);
- no question contains 4 or more consecutive words of its target ADR's title (from MANIFEST.tsv).
Prints counts per split and repository. Exits 1 if any check fails.
"""

import argparse
import collections
import csv
import hashlib
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_CORPUS = HERE.parents[1].parent / "shared" / "corpora" / "adr"  # as bench/retrieval_eval.py
SPLITS = ("tune", "test")
NGRAM = 4


def words(text):
    return re.findall(r"[a-z0-9]+", text.lower())


def ngrams(tokens, n):
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def split_of(path):
    return "test" if int(hashlib.sha256(path.encode()).hexdigest(), 16) % 2 else "tune"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    args = parser.parse_args()

    with open(args.corpus / "MANIFEST.tsv", newline="") as fh:
        titles = {r["local_path"]: r["title"] for r in csv.DictReader(fh, delimiter="\t")}

    problems = []
    seen = {}
    targets = set()
    counts = collections.Counter()
    for split in SPLITS:
        lines = (HERE / f"tasks_{split}.tsv").read_text().splitlines()
        if not lines or not lines[0].startswith("#"):
            problems.append(f"{split}: first line is not a # header")
        for no, line in enumerate(lines[1:], start=2):
            where = f"tasks_{split}.tsv:{no}"
            parts = line.split("\t")
            if len(parts) != 2 or not all(p.strip() for p in parts):
                problems.append(f"{where}: not 'question<TAB>path'")
                continue
            question, path = parts
            if not (args.corpus / path).is_file():
                problems.append(f"{where}: no such corpus file {path}")
            if path not in titles:
                problems.append(f"{where}: {path} is not in MANIFEST.tsv")
            key = " ".join(words(question))
            if key in seen:
                problems.append(f"{where}: duplicate of {seen[key]}")
            seen[key] = where
            if split_of(path) != split:
                problems.append(f"{where}: {path} belongs in the {split_of(path)} split")
            shared = ngrams(words(question), NGRAM) & ngrams(words(titles.get(path, "")), NGRAM)
            if shared:
                problems.append(f"{where}: shares {sorted(shared)[0]} with the title of {path}")
            counts[(split, path.split("/")[0])] += 1
            targets.add(path)

    repos = sorted({repo for _, repo in counts})
    print(f"{'repository':45} {'tune':>5} {'test':>5} {'all':>5}")
    for repo in repos:
        tune, test = counts[("tune", repo)], counts[("test", repo)]
        print(f"{repo:45} {tune:5} {test:5} {tune + test:5}")
    tune = sum(v for (s, _), v in counts.items() if s == "tune")
    test = sum(v for (s, _), v in counts.items() if s == "test")
    print(f"{'total':45} {tune:5} {test:5} {tune + test:5}")
    print(f"distinct target ADRs: {len(targets)}")
    for p in problems:
        print("PROBLEM:", p)
    print("OK" if not problems else f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
