"""Reading one ADR markdown file: front matter, title, status, date, deciders and the links its
author wrote. Pure functions, no database: the import service decides what to do with them.

Formats understood: Michael Nygard / adr-tools (``## Status`` section, ``Date:`` line), MADR 2
(``* Status:`` bullets), MADR 3/4 (YAML front matter), log4brains (``YYYYMMDD-slug.md`` with
``- Status:`` / ``- Date:`` bullets), contextkb's own export (front matter with ``key`` and
``links``), and a generic fallback (first heading = title).
"""

from __future__ import annotations

import datetime as dt
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

# --- status words -----------------------------------------------------------------------------

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


def _plain(text: str) -> str:
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
    plain = _plain((text or "")[:500])
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


# --- links ------------------------------------------------------------------------------------

SUPERSEDES, SUPERSEDED_BY, AMENDS, AMENDED_BY, RELATES = (
    "supersedes",
    "superseded_by",
    "amends",
    "amended_by",
    "relates",
)
# What may stand between "superseded" and "by": a colon, "on" and a date ("Superseded:
# 2019-12-19 by [ADR 14]"), or up to two words ("superseded in part by").
_STATUS_DATE = r"(?:\s*:)?\s*(?:on\s+)?(?:\(?\d{4}-\d{1,2}-\d{1,2}\)?,?)?"
_CUES: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"super[sc]eded" + _STATUS_DATE + r"\s+(?:\w+\s+){0,2}by|replaced\s+by"),
        SUPERSEDED_BY,
    ),
    # "⌛️ Superseded [0019](0019-x.md)", "Superseded: [ADR 14](…)": the link right after the word.
    (re.compile(r"super[sc]eded" + _STATUS_DATE + r"\s*[-:,]?\s*$"), SUPERSEDED_BY),
    (re.compile(r"amended" + _STATUS_DATE + r"\s*[-:,]?\s*$"), AMENDED_BY),
    (re.compile(r"super[sc]edes|super[sc]eding|replaces"), SUPERSEDES),
    (re.compile(r"amended" + _STATUS_DATE + r"\s+by"), AMENDED_BY),
    (re.compile(r"\bamends\b|\bamending\b"), AMENDS),
    (re.compile(r"related\s+to|relates\s+to|see\s+also"), RELATES),
]
_PARTIAL = re.compile(r"\b(?:partly|partially|in part|some aspects|parts of)\b")
_TRAILING_SUPERSEDES = re.compile(
    r"^[)\]\s,]*which\s+(?:this\s+(?:decision|adr|record)\s+)?super[sc]edes"
)
_JOINER = re.compile(r"^[\s).]*(?:,|and|&|,\s*and|or)\s*$")
_INLINE = re.compile(
    r"(?<!!)\[((?:[^\[\]]++|\[[^\[\]]*+\])*+)\]\(\s*<?([^)\s>]{1,1000}+)>?(?:\s+\"[^\"]{0,300}\")?\s*\)"
)
_REFERENCE = re.compile(r"(?<!!)\[([^\[\]]+)\]\[([^\[\]]*)\]")
# A shortcut reference link, `[ADR 20]` with `[ADR 20]: 0020-x.md` elsewhere in the file.
_SHORTCUT = re.compile(r"(?<![!\]\\])\[([^\[\]]{1,300})\](?![(\[:])")
_REF_DEF = re.compile(r"^\s{0,3}\[([^\]]+)\]:\s*<?(\S+?)>?(?:\s+[\"'(].*)?\s*$")
# Bare GitHub URLs and autolinks (`<https://github.com/…>`); not the target of an inline link.
_BARE_URL = re.compile(r"(?<![(\[])\bhttps?://github\.com/[^\s)>\]]+")
_GITHUB_BLOB = re.compile(r"^https?://github\.com/[^/]+/[^/]+/(?:blob|tree|raw)/[^/]+/(.+)$")
_TEXT_REF = re.compile(
    r"(super[sc]eded"
    + _STATUS_DATE
    + r"\s+(?:\w+\s+){0,2}by|super[sc]edes|amended"
    + _STATUS_DATE
    + r"\s+by|\bamends)\s*(?:decision\s*)?:?\s*"
    r"(?:#\s*)?([a-z]{0,4})[\s#_-]?0*(\d{1,5})\b",
    re.IGNORECASE,
)
_TEXT_REF_RELATION = {
    "superseded": SUPERSEDED_BY,
    "superceded": SUPERSEDED_BY,
    "supersedes": SUPERSEDES,
    "supercedes": SUPERSEDES,
    "amended": AMENDED_BY,
    "amends": AMENDS,
}


@dataclass
class FoundLink:
    """One link (or plain-text reference) from this file towards another ADR."""

    relation: str
    url: str  # as written; for text references, the reference ("ADR025")
    line_no: int
    line: str
    partial: bool = False
    number: int | None = None  # text references: the ADR number named
    prefix: str = ""  # text references: letters before the number ("ADR", "DR")
    fallback_number: int | None = None  # a link whose text names a number ("AD045: …")
    fallback_prefix: str = ""


def _label(text: str) -> str:
    """A reference label as CommonMark matches it: case and runs of spaces do not count."""
    return " ".join(text.split()).lower()


def _cue(text: str) -> str | None:
    """The relation named last in `text` (the words right before a link)."""
    best: tuple[int, str] | None = None
    for pattern, relation in _CUES:
        for match in pattern.finditer(text):
            if best is None or match.end() > best[0]:
                best = (match.end(), relation)
    return best[1] if best else None


def _strip_code(lines: list[str]) -> list[str]:
    """Blank out fenced code blocks (examples in ADRs about ADRs are not metadata)."""
    out, fence = [], ""
    for line in lines:
        stripped = line.lstrip()
        if fence:
            if stripped.startswith(fence):
                fence = ""
            out.append("")
            continue
        if stripped.startswith("```") or stripped.startswith("~~~"):
            fence = stripped[:3]
            out.append("")
            continue
        out.append(line)
    return out


MAX_LINKS_PER_FILE = 1000


def find_links(body: str, *, first_line: int = 1) -> list[FoundLink]:
    """Every markdown link and plain-text status reference, with the relation its words name
    (at most MAX_LINKS_PER_FILE + 1: more than that is reported, not followed)."""
    raw_lines = body.splitlines()
    lines = _strip_code(raw_lines)
    ref_defs: dict[str, str] = {}
    for line in lines:
        m = _REF_DEF.match(line)
        if m:
            ref_defs[_label(m.group(1))] = m.group(2)
    found: list[FoundLink] = []
    for index, line in enumerate(lines):
        if len(found) > MAX_LINKS_PER_FILE:
            break
        if not line.strip() or _REF_DEF.match(line):
            continue
        line_no = index + first_line
        spans: list[tuple[int, int, str, str]] = []  # start, end, text, url
        # Which characters are inside a link already (linear, whatever the number of links).
        covered = bytearray(len(line) + 1)
        for m in _INLINE.finditer(line):
            spans.append((m.start(), m.end(), m.group(1), m.group(2)))
            covered[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
        for m in _REFERENCE.finditer(line):
            ref = _label(m.group(2) or m.group(1))
            if ref in ref_defs and not covered[m.start()]:
                spans.append((m.start(), m.end(), m.group(1), ref_defs[ref]))
                covered[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
        if ref_defs:
            for m in _SHORTCUT.finditer(line):
                ref = _label(m.group(1))
                if ref in ref_defs and not covered[m.start()]:
                    spans.append((m.start(), m.end(), m.group(1), ref_defs[ref]))
                    covered[m.start() : m.end()] = b"\x01" * (m.end() - m.start())
        for m in _BARE_URL.finditer(line):
            if not covered[m.start()]:
                spans.append((m.start(), m.end(), m.group(0), m.group(0).rstrip(".,;")))
        spans.sort()
        previous_end, previous_relation = 0, None
        lower = line.lower()
        # "in part supersedes [A] and [B]": a partial cue anywhere before a link on its line.
        partial_at = next((m.start() for m in _PARTIAL.finditer(lower)), len(lower) + 1)
        shown = raw_lines[index].strip()[:300]
        line_links: list[FoundLink] = []
        for start, end, text, url in spans:
            before = lower[previous_end:start]
            relation = _cue(before)
            if relation is None and previous_relation and _JOINER.match(before):
                relation = previous_relation
            if relation is None and _TRAILING_SUPERSEDES.match(lower[end : end + 80]):
                relation = SUPERSEDES
            relation = relation or RELATES
            number = re.search(r"\b([a-z]{0,4})[\s#_-]?0*(\d{1,5})\b", text, re.IGNORECASE)
            link = FoundLink(
                relation=relation,
                url=url,
                line_no=line_no,
                line=shown,
                partial=partial_at < start,
                fallback_number=int(number.group(2)) if number else None,
                fallback_prefix=(number.group(1) or "").lower() if number else "",
            )
            line_links.append(link)
            previous_end, previous_relation = end, (relation if relation != RELATES else None)
        found.extend(line_links)
        # Plain-text references ("Superseded by ADR025") outside any link.
        pieces, position = [], 0
        for start, end, _, _ in spans:
            if start >= position:
                pieces += [line[position:start], " \x00 "]
                position = end
        pieces.append(line[position:])
        text_only = "".join(pieces)
        for m in _TEXT_REF.finditer(text_only):
            word = re.match(r"[a-z]+", m.group(1).lower()).group(0)
            found.append(
                FoundLink(
                    relation=_TEXT_REF_RELATION.get(word, RELATES),
                    url=text_only[m.start(2) : m.end(3)].strip(),
                    line_no=line_no,
                    line=shown,
                    partial=partial_at < m.start(),
                    number=int(m.group(3)),
                    prefix=m.group(2).lower(),
                )
            )
    return found


def resolve_url(url: str, *, source: str, paths: dict[str, str]) -> str | None:
    """The imported file a link points to, or None.

    `source` is the linking file's path inside the import; `paths` maps lower-cased import paths
    to their real spelling. Relative links resolve against the source's folder; GitHub URLs
    resolve when their in-repository path ends with an imported file's path (or vice versa).
    """
    url = url.strip()
    blob = _GITHUB_BLOB.match(url)
    if blob:
        wanted = unquote(urlsplit(url).path)
        wanted = _GITHUB_BLOB.match("https://github.com" + wanted)
        in_repo = (wanted.group(1) if wanted else blob.group(1)).strip("/").lower()
        # With or without ".md", as relative links (a URL cut short at "….").
        options = [in_repo] if in_repo.endswith(".md") else [in_repo, in_repo.rstrip(".") + ".md"]
        for option in options:
            matches = [
                real
                for low, real in paths.items()
                if option == low or option.endswith("/" + low) or low.endswith("/" + option)
            ]
            if matches:
                return matches[0] if len(matches) == 1 else None
        return None
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    target = unquote(parts.path)
    if target.startswith("/"):
        candidate = posixpath.normpath(target.lstrip("/"))
    else:
        candidate = posixpath.normpath(posixpath.join(posixpath.dirname(source), target))
    for option in (candidate, candidate + ".md"):
        real = paths.get(option.lower())
        if real:
            return real
    return None


def github_repo(url: str) -> str:
    """`owner/repo` of a GitHub file URL, lower-cased ('' for any other URL)."""
    if not _GITHUB_BLOB.match(url.strip()):
        return ""
    return "/".join(urlsplit(url.strip()).path.strip("/").split("/")[:2]).lower()


def looks_like_adr_link(url: str) -> bool:
    """A link worth reporting when it does not resolve: a relative .md file or a GitHub blob."""
    parts = urlsplit(url)
    if _GITHUB_BLOB.match(url):
        return parts.path.lower().endswith(".md")
    if parts.scheme or parts.netloc or not parts.path:
        return False
    name = posixpath.basename(parts.path.lower())
    return name.endswith(".md") or "." not in name


# --- the whole file ---------------------------------------------------------------------------

_FRONT_MATTER = re.compile(
    r"\A---[ \t]*\r?\n(.*?)(?:\r?\n)?^(?:---|\.\.\.)[ \t]*$\r?\n?", re.S | re.M
)
# Headings are matched greedily and their closing #s stripped in Python: a lazy `(.+?)\s*#*\s*$`
# is quadratic on a long line of spaces.
_H1 = re.compile(r"^#[ \t]++(.*\S)")
_SETEXT = re.compile(r"^=+\s*$")
_HEADING = re.compile(r"^(#{1,6})[ \t]++(.*\S)")
_META_LINE = re.compile(
    r"^\s*(?:[-*+]\s+)?(?:\*\*|__)?(status|date|deciders|decision[- ]makers)(?:\*\*|__)?\s*:\s*"
    r"(?:\*\*|__)?\s*(.*)$",
    re.IGNORECASE,
)
_FILE_NUMBER = re.compile(r"^(?:[a-z]{1,4}[-_ ]?)?0*(\d{1,5})(?=[-_. ]|$)", re.IGNORECASE)
_DATE_FORMATS = (
    "%Y-%m-%d",
    "%d/%m/%Y",
    "%d/%m/%y",
    "%Y/%m/%d",
    "%d.%m.%Y",
    "%B %d, %Y",
    "%d %B %Y",
)
_KEY = re.compile(r"^([A-Z]{3})-(\d+)$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def _heading_text(text: str) -> str:
    """A heading without its optional closing #s ("## Status ##")."""
    text = text.rstrip()
    bare = text.rstrip("#")
    if bare != text and (not bare or bare[-1] in " \t"):
        text = bare.rstrip()
    return text


MAX_FRONT_MATTER_CHARS = 20_000


class FrontMatterError(ValueError):
    """The YAML front matter is not valid."""


@dataclass
class ParsedAdr:
    path: str
    title: str
    body: str
    format: str
    status: StatusReading
    status_text: str
    number: int | None
    date_text: str = ""
    decided_on: dt.date | None = None
    date_problem: str = ""
    deciders: str = ""
    front_matter: dict[str, Any] = field(default_factory=dict)
    links: list[FoundLink] = field(default_factory=list)
    exported: bool = False  # written by contextkb's export (links come from front matter)
    # Where the status was read: "front matter", "status line", "status table", "status section".
    status_source: str = ""
    # A date written with the status ("Superseded: 2019-12-19 by …", a status table's Date).
    status_date: dt.date | None = None
    title_source: str = ""  # "front matter", "heading", "file name"
    consulted: str = ""  # MADR 4
    informed: str = ""  # MADR 4


def split_front_matter(text: str) -> tuple[dict[str, Any], str, int]:
    """(front matter, body, line number where the body starts). Raises FrontMatterError."""
    m = _FRONT_MATTER.match(text)
    if not m:
        return {}, text, 1
    if len(m.group(1)) > MAX_FRONT_MATTER_CHARS:
        raise FrontMatterError(f"front matter is longer than {MAX_FRONT_MATTER_CHARS:,} characters")
    try:
        data = yaml.safe_load(m.group(1)) if m.group(1).strip() else {}
    except RecursionError:
        raise FrontMatterError("front matter is nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FrontMatterError(f"front matter is not valid YAML{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FrontMatterError("front matter is not a YAML mapping")
    body = text[m.end() :]
    return data, body, text[: m.end()].count("\n") + 1


def parse_date(value: Any) -> tuple[dt.date | None, str]:
    """(date, problem). Accepts ISO, dd/mm/yyyy and a few written forms."""
    if isinstance(value, dt.datetime):
        return value.date(), ""
    if isinstance(value, dt.date):
        return value, ""
    text = re.sub(r"[*_`]", "", as_text(value)).strip()
    if not text:
        return None, ""
    head = re.match(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4}|\d{4}/\d{1,2}/\d{1,2}", text)
    candidates = [head.group(0)] if head else [text]
    for candidate in candidates:
        for fmt in _DATE_FORMATS:
            try:
                return dt.datetime.strptime(candidate, fmt).date(), ""
            except ValueError:
                continue
    return None, f"invalid date {text[:40]!r}"


def _section(lines: list[str], name: str) -> tuple[str, int] | None:
    """The first paragraph under a heading called `name` (any level), and its line index.

    Template guidance in a block quote is passed over when a plain paragraph follows it; a
    section holding only a quote gives the quote's first line ("> Accepted or Rejected").
    """
    for i, line in enumerate(lines):
        m = _HEADING.match(line)
        if not (m and _plain(_heading_text(m.group(2))[:200]) == name):
            continue
        paragraphs: list[tuple[bool, list[str], int]] = []
        current: list[str] = []
        quoted, start = False, i
        for j in range(i + 1, len(lines)):
            if _HEADING.match(lines[j]):
                break
            text = lines[j].strip()
            is_quote = text.startswith(">")
            content = text.lstrip(">").strip()
            if not content or (current and is_quote != quoted):
                if current:
                    paragraphs.append((quoted, current, start))
                    current = []
                if not content:
                    continue
            if not current:
                quoted, start = is_quote, j
            current.append(content)
        if current:
            paragraphs.append((quoted, current, start))
        for quoted, para, start in paragraphs:
            if not quoted:
                return " ".join(para), start
        if paragraphs:
            return paragraphs[0][1][0], paragraphs[0][2]
        return "", i
    return None


_SCALARS = (str, int, float, dt.date)


def as_text(value: Any) -> str:
    """A front-matter value as text: scalars, or a list of scalars joined with commas. Anything
    nested is ignored (YAML aliases can make a tiny file expand enormously when printed)."""
    if isinstance(value, _SCALARS) and not isinstance(value, bool):
        return str(value).strip()[:1000]
    if isinstance(value, list | tuple):
        items = [str(v).strip()[:200] for v in value[:100] if isinstance(v, _SCALARS)]
        return ", ".join(v for v in items if v)[:1000]
    return ""


def file_number(path: str) -> int | None:
    """The ADR number in a file name (``0012-x.md``, ``ADR025-x.md``, ``adr-006-x.md``);
    log4brains' ``YYYYMMDD-`` dates are not numbers."""
    m = _FILE_NUMBER.match(posixpath.basename(path))
    if not m:
        return None
    number = int(m.group(1))
    return number or None


_TABLE_ROW = re.compile(r"^\s*\|(.*)\|\s*$")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(?:\|\s*:?-{2,}:?\s*)*\|?\s*$")
_DATE_IN_TEXT = re.compile(r"\b(\d{4}-\d{1,2}-\d{1,2})\b")


def _cells(line: str) -> list[str]:
    m = _TABLE_ROW.match(line)
    if not m:
        return []
    # Split on pipes that are not escaped ("\|") and not inside a link's brackets.
    return [c.strip() for c in re.split(r"(?<!\\)\|", m.group(1))]


def _column(name: str) -> str:
    """A status table's column or row name as one of status / date / deciders ('' otherwise)."""
    plain = _plain(name)
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


def file_title(path: str) -> str:
    """A title made from a file name: ``001-drop-kafka-dependency.md`` → "Drop kafka dependency"
    (the number, or log4brains' date, left out)."""
    stem = posixpath.splitext(posixpath.basename(path))[0]
    words = re.sub(r"^(?:\d{8}|(?:[a-z]{1,4}[-_ ]?)?\d{1,5})(?=[-_ ])", "", stem, flags=re.I)
    words = re.sub(r"[-_]+", " ", words).strip()
    if not words:
        return ""
    return words[0].upper() + words[1:]


_LEADING_H1 = re.compile(r"\A(?:[ \t]*(?:\r\n|\r|\n))*#[ \t]++([^\r\n]*)(?:\r\n|\r|\n|\Z)")
_LEADING_SETEXT = re.compile(
    r"\A(?:[ \t]*(?:\r\n|\r|\n))*([^\r\n#|>-][^\r\n]*)(?:\r\n|\r|\n)=+[ \t]*(?:\r\n|\r|\n|\Z)"
)
_BLANK_LINES = re.compile(r"\A(?:[ \t]*(?:\r\n|\r|\n))+")


def strip_title_heading(body: str, title: str | None = None) -> str:
    """The body without the H1 it opens with (the record's title is shown on its own), and the
    blank lines after it. With `title`, only an H1 that says exactly that is taken out."""
    m = _LEADING_H1.match(body) or _LEADING_SETEXT.match(body)
    if not m:
        return body
    if title is not None and re.sub(r"\s+", " ", _heading_text(m.group(1))).strip() != (
        re.sub(r"\s+", " ", title).strip()
    ):
        return body
    return _BLANK_LINES.sub("", body[m.end() :])


# Front-matter keys some templates use for links ("superseded_by: 0014-x.md", "supersedes: [3]").
_FRONT_MATTER_LINKS = {
    "superseded_by": "Superseded by",
    "superseded-by": "Superseded by",
    "supersededby": "Superseded by",
    "supersedes": "Supersedes",
    "amended_by": "Amended by",
    "amended-by": "Amended by",
    "amends": "Amends",
}


def front_matter_links(front: dict[str, Any]) -> list[FoundLink]:
    """The links a front matter names: the keys above (a path, a number or an ADR name each, or a
    list of them), and a status written with a link or number ("superseded by ADR-0057")."""
    lines = []
    for name, words in _FRONT_MATTER_LINKS.items():
        values = front.get(name)
        values = values if isinstance(values, list) else [values]
        for value in values[:50]:
            text = as_text(value)
            if not text:
                continue
            if re.fullmatch(r"[#\s]*\d{1,5}", text):
                text = f"ADR {text.strip('# ')}"
            elif "/" in text or text.lower().endswith((".md", ".markdown")):
                text = f"[{text}]({text})"
            lines.append(f"{words} {text}")
    status = as_text(front.get("status"))
    if status and re.search(r"super[sc]ed|amend|replace", status, re.IGNORECASE):
        lines.append(status)
    return find_links("\n".join(lines), first_line=1) if lines else []


def parse_adr(path: str, text: str) -> ParsedAdr:
    """Read one decoded markdown file. Raises FrontMatterError for broken front matter.

    Lines are read with their endings normalised, but the body is kept exactly as written
    (CRLF included): "the original markdown body" means byte for byte.
    """
    raw = text
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    front, body, first_line = split_front_matter(text)
    if raw != text:
        head = len(text) - len(body)
        # The front matter is at the start; where it has no CR, the raw body starts at the
        # same offset. Otherwise (a CRLF front matter) the lines after it are re-joined.
        if raw.startswith(text[:head]):
            body = raw[head:]
        else:
            breaks = list(_LINE_BREAK.finditer(raw, 0))
            body = raw[breaks[first_line - 2].end() :] if first_line > 1 else raw
    lines = body.splitlines()
    plain_lines = _strip_code(lines)
    exported = (
        "key" in front
        and isinstance(front.get("links"), dict | type(None))
        and bool(_KEY.match(as_text(front.get("key"))))
    )

    # Title: front matter, then the first H1 (ATX or setext), then the file name (a file with
    # no H1 usually opens with "## Context": its name says more), then the first heading.
    title = as_text(front.get("title"))
    title_source = "front matter" if title else ""
    if title and exported:
        # contextkb's own export: the title exactly as it was (tabs, double spaces, newlines).
        title = title[:200]
    elif not title:
        for i, line in enumerate(plain_lines):
            m = _H1.match(line)
            if m:
                title, title_source = _heading_text(m.group(1)), "heading"
                break
            if i + 1 < len(plain_lines) and line.strip() and _SETEXT.match(plain_lines[i + 1]):
                title, title_source = line.strip(), "heading"
                break
    if not title:
        title = file_title(path)
        title_source = "file name" if title else ""
    if not title:
        for line in plain_lines:
            m = _HEADING.match(line)
            if m:
                title = _heading_text(m.group(2))
                break
    if not title:
        stem = posixpath.splitext(posixpath.basename(path))[0]
        title = re.sub(r"[-_]+", " ", stem).strip() or stem
    if not exported:
        title = re.sub(r"\s+", " ", title).strip()[:200]

    # Metadata lines ("- Status: accepted", "Date: 2020-01-01", "**Date:** …").
    meta: dict[str, tuple[str, int]] = {}
    first_section = next(
        (i for i, line in enumerate(plain_lines) if line.startswith("## ")), len(plain_lines)
    )
    for i, line in enumerate(plain_lines):
        m = _META_LINE.match(line)
        if m and m.group(2):
            name = m.group(1).lower().replace(" ", "-")
            name = "deciders" if name.startswith("decision") else name
            # Status and date lines count anywhere before the first section; later only as
            # bullets/plain lines that start the line (MADR 2 puts them under the title).
            if name not in meta and (i < first_section or name != "status"):
                meta[name] = (m.group(2).strip(), i)

    fmt = "generic"
    status_text = status_source = ""
    table = status_table(plain_lines) if "status" not in front else None
    if "status" in front:
        status_text, status_source = as_text(front["status"]), "front matter"
        fmt = "madr"
    elif "status" in meta:
        status_text, status_source = meta["status"][0], "status line"
        fmt = "log4brains" if re.match(r"^\d{8}-", posixpath.basename(path)) else "madr"
    elif table:
        status_text, status_source = table[0]["status"], "status table"
        fmt = "status-table"
    else:
        section = _section(plain_lines, "status")
        if section:
            status_text, status_source = section[0], "status section"
            fmt = "nygard"
        else:
            for line in plain_lines[:first_section]:
                if re.search(r"super[sc]eded|deprecated", line, re.IGNORECASE) and not _H1.match(
                    line
                ):
                    status_text, status_source = line.strip(), "status line"
                    break
    if fmt == "generic" and (
        front
        or any("decision outcome" in ln[:200].lower() for ln in plain_lines if ln.startswith("#"))
    ):
        fmt = "madr"
    if exported:
        fmt = "contextkb"

    date_value: Any = front.get("date") or front.get("decided_on")
    if date_value in (None, "") and "date" in meta:
        date_value = meta["date"][0]
    if date_value in (None, "") and table and table[0].get("date"):
        date_value = table[0]["date"]
    if date_value in (None, ""):
        section = _section(plain_lines, "date")
        date_value = section[0] if section else ""
    decided_on, date_problem = parse_date(date_value)
    # "Superseded: 2019-12-19 by …", "Accepted on 2021-03-04": the day the status was set.
    status_date = None
    in_status = _DATE_IN_TEXT.search(status_text[:500])
    if in_status:
        status_date, _ = parse_date(in_status.group(1))
    if status_date is None and status_source == "status table" and decided_on:
        status_date = decided_on

    deciders = as_text(
        front.get("deciders") or front.get("decision-makers") or front.get("decision_makers")
    )
    if not deciders and "deciders" in meta:
        deciders = meta["deciders"][0]
    if not deciders and table and table[0].get("deciders"):
        # "[@nscuro](https://github.com/nscuro)": the names, not the markdown around them.
        deciders = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", table[0]["deciders"])

    number = None
    key = _KEY.match(as_text(front.get("key")))
    number = int(key.group(2)) if key else file_number(path)

    full_body = body
    if exported:
        # contextkb's export writes the title as an H1 above the body; only that one goes.
        body = strip_title_heading(body, title)
    elif title_source == "heading" or (
        title_source == "front matter" and strip_title_heading(body, title) != body
    ):
        body = strip_title_heading(body)

    return ParsedAdr(
        path=path,
        title=title,
        body=body,
        format=fmt,
        status=normalise_status(status_text) if not exported else StatusReading(ACCEPTED),
        status_text=status_text,
        number=number,
        date_text=as_text(date_value) if not isinstance(date_value, dt.date) else "",
        decided_on=decided_on,
        date_problem=date_problem,
        deciders=(deciders if exported else re.sub(r"\s+", " ", deciders))[:500],
        front_matter=front,
        links=[]
        if exported
        else find_links(full_body, first_line=first_line) + front_matter_links(front),
        exported=exported,
        status_source=status_source if not exported else "front matter",
        status_date=status_date,
        title_source=title_source,
        consulted=as_text(front.get("consulted"))[:500],
        informed=as_text(front.get("informed"))[:500],
    )
