"""Anchors tie records to code: path globs (`services/billing/**`, `*.sql`) or component names.

Each anchor is compiled once, at write time, to an anchored regular expression that both Python
and PostgreSQL understand; records store them in `Record.anchor_patterns`, so "which records are
anchored to this path?" is one SQL query (`RecordQuerySet.anchored_to`).

Rules: `**` matches across folders (`a/**` matches `a` and everything under it, `**/x` matches x
in any folder), `*` and `?` stay inside one folder, and an anchor without wildcards also covers
everything under it (`services/billing` matches `services/billing/api.py`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WILDCARDS = set("*?")


def normalise_path(path: str) -> str:
    path = path.strip().replace("\\", "/")
    while path.startswith("./"):
        path = path[2:]
    return path.lstrip("/")


def glob_to_regex(anchor: str) -> str:
    glob = normalise_path(anchor).rstrip("/") if anchor.strip() not in ("/", "**") else "**"
    out: list[str] = []
    i = 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif glob.startswith("/**", i) and i + 3 == len(glob):
            out.append("(?:/.*)?")
            i += 3
        elif glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    body = "".join(out)
    if not _WILDCARDS & set(glob):
        body += "(?:/.*)?"
    return f"^{body}$"


def compile_anchors(anchors: Iterable[str]) -> list[str]:
    return [glob_to_regex(a) for a in anchors if a.strip()]


def matches(anchor: str, path: str) -> bool:
    return re.match(glob_to_regex(anchor), normalise_path(path)) is not None


def any_match(anchors: Iterable[str], paths: Iterable[str]) -> bool:
    patterns = [re.compile(p) for p in compile_anchors(anchors)]
    return any(p.match(normalise_path(path)) for p in patterns for path in paths)
