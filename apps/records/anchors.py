"""Anchors tie records to code: path globs (`services/billing/**`, `*.sql`) or component names.

Each anchor is compiled once, at write time, to an anchored regular expression that both Python
and PostgreSQL understand; records store them in `Record.anchor_patterns`, so "which records are
anchored to this path?" is one SQL query (`RecordQuerySet.anchored_to`).

Rules: `**` matches across folders (`a/**` matches `a` and everything under it, `**/x` matches x
in any folder), `*` and `?` stay inside one folder, and an anchor without wildcards also covers
everything under it (`services/billing` matches `services/billing/api.py`).

Anchors are paths from the repository root. `clean_anchor` is the one rule for what people may
write, used by every front door (the services call it, the web form shows its messages): a
leading `/` or `./` and Windows backslashes are normalised away, paths that only exist on one
computer (`C:\\repo\\x`, `\\\\server\\share`, `~/x`) and `..` are refused, and an anchor that
matches every file (`**`) is accepted with a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_WILDCARDS = set("*?")
# `C:\x`, `C:/x`, `C:` and UNC shares `\\server\share`: paths on one machine, not in a repository.
_MACHINE_PATH = re.compile(r"^(?:[A-Za-z]:(?:[\\/]|$)|[\\/]{2}[^\\/]|~)")
EVERYTHING_WARNING = (
    "“{anchor}” matches every file in the repository, so any commit will mark this record "
    "suspect. Anchor it to the folders it is about, e.g. services/billing/**."
)


# A file at the root and one deep down: a glob that matches both matches everything.
_EVERY_FILE_PROBES = ("README.md", "src/app/deep/main.py")


class AnchorRefused(ValueError):
    """An anchor that can never match a repository path; the message says what to write."""


def _shown(anchor: str) -> str:
    return anchor if len(anchor) <= 40 else anchor[:40] + "…"


def clean_anchor(anchor: str) -> tuple[str, str]:
    """One anchor as a person wrote it -> (the anchor to store, a warning or "").

    Raises AnchorRefused for what never matches: a path on one computer, `..`, control characters.
    """
    raw = anchor.strip()
    shown = _shown(raw)
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in raw):
        raise AnchorRefused(f"“{shown}” contains a control character.")
    if _MACHINE_PATH.match(raw):
        raise AnchorRefused(
            f"“{shown}” is a path on one computer; anchors are paths from the repository root, "
            "e.g. services/billing/**."
        )
    path = raw.replace("\\", "/")
    if ".." in path.split("/"):
        raise AnchorRefused(
            f"“{shown}”: anchors are paths inside the repository, so “..” never matches. "
            "Write the path from the repository root, e.g. services/billing/**."
        )
    # Root-relative, as in .gitignore and CODEOWNERS: "/docs" and "./docs" mean "docs".
    path = re.sub(r"/{2,}", "/", path)
    while path.startswith("./"):
        path = path[2:]
    path = path.lstrip("/") or "**"
    warning = ""
    if all(re.match(glob_to_regex(path), probe) for probe in _EVERY_FILE_PROBES):
        warning = EVERYTHING_WARNING.format(anchor=path)
    return path, warning


def clean_anchors(anchors: Iterable[str]) -> tuple[list[str], list[str]]:
    """`clean_anchor` over a list, without blanks or repeats -> (anchors, warnings)."""
    out: list[str] = []
    warnings: list[str] = []
    for anchor in anchors:
        if not anchor.strip():
            continue
        path, warning = clean_anchor(anchor)
        if path not in out:
            out.append(path)
        if warning and warning not in warnings:
            warnings.append(warning)
    return out, warnings


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
