"""Reading an ADR's status as its author wrote it: status words in any of the usual spellings,
status lines and status tables, mapped to a record status (and a tag for what has no status).
Pure functions, no database."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Record.Status values, spelled out so this module stays free of Django imports.
ACCEPTED, PROPOSED, DRAFT = "accepted", "proposed", "draft"
REJECTED, DEPRECATED, SUPERSEDED = "rejected", "deprecated", "superseded"

# Statuses Record.Status has no word for, kept as a tag next to the closest status.
TAG_ON_HOLD = "status-on-hold"
TAG_PLACEHOLDER = "status-placeholder"
TAG_UNSTATED = "status-unstated"

# (pattern, status, extra tag). The earliest match in the text wins, so "Superseded by X. This was
# never implemented" is superseded and "Accepted / Amended by 17" is accepted.
_STATUS_WORDS: list[tuple[re.Pattern[str], str, str]] = [
    (
        re.compile(r"\b(?:partly |partially |in part )?super[sc]eded\b|\breplaced by\b"),
        SUPERSEDED,
        "",
    ),
    (re.compile(r"\bdeprecated\b|\bobsolete\b|\bretired\b"), DEPRECATED, ""),
    (re.compile(r"\brejected\b|\bdeclined\b|\babandoned\b|\bwithdrawn\b"), REJECTED, ""),
    (re.compile(r"\bon[- ]hold\b|\bpostponed\b|\bparked\b|\bdeferred\b"), PROPOSED, TAG_ON_HOLD),
    (re.compile(r"\bdraft\b|\bincomplete\b|\bwip\b|\bwork in progress\b"), DRAFT, ""),
    (
        re.compile(
            r"\bproposed\b|\bproposal\b|\bpending\b|\b(?:in|under) review\b|\breview\b|\brfc\b"
            r"|\bopen\b|\bdiscussion\b"
        ),
        PROPOSED,
        "",
    ),
    (
        re.compile(
            r"\baccepted\b|\bapproved\b|\bimplemented\b|\badopted\b|\bagreed\b|\bdecided\b"
            r"|\bdone\b|\bactive\b|\bcomplete[d]?\b|\bin effect\b"
        ),
        ACCEPTED,
        "",
    ),
]
# Template text left in place: "Accepted or Rejected", "{Deprecated|Proposed|Accepted}".
_PLACEHOLDER = re.compile(r"\{[^{}|]*+\|[^{}]*+\}|^\s*\w+\s+or\s+\w+\s*$|\[[^\[\]|]*+\|[^\[\]]*+\]")


@dataclass
class StatusReading:
    status: str  # a Record.Status value
    tags: list[str] = field(default_factory=list)
    unknown: str = ""  # the text as written, when no word was recognised
    partial: bool = False  # "Partly superseded"


def plain_words(text: str) -> str:
    """Markdown, HTML and emoji stripped, lower case, one line."""
    text = re.sub(r"<!--.*?(?:-->|$)", " ", text, flags=re.S)  # template hints: <!-- optional -->
    text = re.sub(r"</?[a-zA-Z][^<>]{0,300}>", " ", text)
    text = re.sub(r"!\[[^\]]*\]\([^)]*\)", " ", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\[[^\]]*\]", r"\1", text)
    text = re.sub(r"[*_`~>#]", " ", text)
    text = "".join(ch if ch.isascii() else " " for ch in text)
    return re.sub(r"\s+", " ", text).strip().lower()


def normalise_status(text: str | None) -> StatusReading:
    """Map a status as written to a Record.Status value (plus tags for words it has no value for)."""
    # A status is a few words; the cap also keeps the regexes below linear on hostile input.
    plain = plain_words((text or "")[:500])
    if not plain:
        return StatusReading(ACCEPTED, [TAG_UNSTATED])
    if _PLACEHOLDER.search(plain):
        return StatusReading(DRAFT, [TAG_PLACEHOLDER])
    best: tuple[int, str, str, re.Match[str]] | None = None
    for pattern, status, tag in _STATUS_WORDS:
        match = pattern.search(plain)
        if match and (best is None or match.start() < best[0]):
            best = (match.start(), status, tag, match)
    if best is None:
        slug = re.sub(r"[^a-z0-9]+", "-", plain)[:40].strip("-") or "unknown"
        return StatusReading(DRAFT, [f"status-{slug}"], unknown=(text or "").strip()[:200])
    _, status, tag, match = best
    partial = status == SUPERSEDED and bool(re.match(r"(partly|partially|in part)", match.group(0)))
    return StatusReading(status, [tag] if tag else [], partial=partial)


_TABLE_ROW = re.compile(r"^\s*\|(.*)\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")


def _cells(line: str) -> list[str]:
    m = _TABLE_ROW.match(line)
    if not m:
        return []
    # Split on pipes that are not escaped ("\|") and not inside a link's brackets.
    return [c.strip() for c in re.split(r"(?<!\\)\|", m.group(1))]


def _column(name: str) -> str:
    """A status table's column or row name as one of status / date / deciders ('' otherwise)."""
    plain = plain_words(name)
    if plain in ("status", "state", "decision status"):
        return "status"
    if plain in ("date", "last updated", "updated", "decided", "decision date", "date decided"):
        return "date"
    if plain in (
        "author", "authors", "author(s)", "deciders", "decision makers", "decision-makers",
        "owner", "owners", "driver", "drivers",
    ):  # fmt: skip
        return "deciders"
    return ""


def status_table(lines: list[str]) -> tuple[dict[str, str], int] | None:
    """The first table that states a status, read as {status, date, deciders}, and its line.

    Two shapes: a header row naming the columns (DependencyTrack/hyades: ``| Status | Date |
    Author(s) |`` over ``| Proposed | 2025-01-07 | … |``), or one field per row (``| Status |
    Accepted |``)."""
    # Status tables open the file; the bounds keep a hostile file's huge table linear.
    for i, line in enumerate(lines[:200]):
        if i + 1 >= len(lines):
            break
        header = _cells(line)
        if not header:
            continue
        names = [_column(c) for c in header]
        # ``| Status | Accepted |`` over a rule is a one-field-per-row table with a header.
        vertical = len(header) == 2 and names == ["status", ""]
        if _TABLE_RULE.match(lines[i + 1]) and not vertical:
            if "status" in names and i + 2 < len(lines):
                row = _cells(lines[i + 2])
                found = {
                    name: row[n] for n, name in enumerate(names) if name and n < len(row) and row[n]
                }
                if found.get("status"):
                    return found, i
            continue
        # One field per row; a header row (``| Field | Value |``) and its rule are passed over.
        found, j = {}, i
        while j < min(len(lines), i + 40) and (_cells(lines[j]) or _TABLE_RULE.match(lines[j])):
            cells = _cells(lines[j])
            if len(cells) >= 2 and _column(cells[0]) and cells[1]:
                found.setdefault(_column(cells[0]), cells[1])
            j += 1
        if found.get("status"):
            return found, i
    return None
