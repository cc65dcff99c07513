"""The links an ADR's author wrote: markdown links with the relation their sentence gives
("Superseded by [ADR 14](0014-x.md)"), numbered references ("see ADR-7"), and how a link's URL
resolves to another file of the import. Pure functions, no database."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

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


def strip_code(lines: list[str]) -> list[str]:
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
    lines = strip_code(raw_lines)
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
        where = _Line(line, index + first_line, raw_lines[index].strip()[:300])
        spans = _link_spans(line, ref_defs)
        found += _links_on_line(where, spans)
        found += _text_references(where, spans)
    return found


@dataclass
class _Line:
    text: str
    line_no: int
    shown: str  # the line as written (for the import report)

    @property
    def partial_at(self) -> int:
        """ "in part supersedes [A] and [B]": a partial cue anywhere before a link on its line."""
        lower = self.text.lower()
        return next((m.start() for m in _PARTIAL.finditer(lower)), len(lower) + 1)


def _link_spans(line: str, ref_defs: dict[str, str]) -> list[tuple[int, int, str, str]]:
    """(start, end, text, url) of each link on the line, in order: inline, reference, shortcut
    reference and bare GitHub URLs, none inside another."""
    spans: list[tuple[int, int, str, str]] = []
    # Which characters are inside a link already (linear, whatever the number of links).
    covered = bytearray(len(line) + 1)

    def add(m: re.Match[str], text: str, url: str) -> None:
        spans.append((m.start(), m.end(), text, url))
        covered[m.start() : m.end()] = b"\x01" * (m.end() - m.start())

    for m in _INLINE.finditer(line):
        add(m, m.group(1), m.group(2))
    for m in _REFERENCE.finditer(line):
        ref = _label(m.group(2) or m.group(1))
        if ref in ref_defs and not covered[m.start()]:
            add(m, m.group(1), ref_defs[ref])
    for m in _SHORTCUT.finditer(line) if ref_defs else ():
        ref = _label(m.group(1))
        if ref in ref_defs and not covered[m.start()]:
            add(m, m.group(1), ref_defs[ref])
    for m in _BARE_URL.finditer(line):
        if not covered[m.start()]:
            spans.append((m.start(), m.end(), m.group(0), m.group(0).rstrip(".,;")))
    spans.sort()
    return spans


def _links_on_line(where: _Line, spans: list[tuple[int, int, str, str]]) -> list[FoundLink]:
    """The line's links, each with the relation named by the words before it (or carried over
    a joiner: "supersedes [A] and [B]"), or by a trailing "is superseded"."""
    lower = where.text.lower()
    partial_at = where.partial_at
    previous_end, previous_relation = 0, None
    links: list[FoundLink] = []
    for start, end, text, url in spans:
        before = lower[previous_end:start]
        relation = _cue(before)
        if relation is None and previous_relation and _JOINER.match(before):
            relation = previous_relation
        if relation is None and _TRAILING_SUPERSEDES.match(lower[end : end + 80]):
            relation = SUPERSEDES
        relation = relation or RELATES
        number = re.search(r"\b([a-z]{0,4})[\s#_-]?0*(\d{1,5})\b", text, re.IGNORECASE)
        links.append(
            FoundLink(
                relation=relation,
                url=url,
                line_no=where.line_no,
                line=where.shown,
                partial=partial_at < start,
                fallback_number=int(number.group(2)) if number else None,
                fallback_prefix=(number.group(1) or "").lower() if number else "",
            )
        )
        previous_end, previous_relation = end, (relation if relation != RELATES else None)
    return links


def _text_references(where: _Line, spans: list[tuple[int, int, str, str]]) -> list[FoundLink]:
    """Plain-text references ("Superseded by ADR025") outside any link."""
    line = where.text
    pieces, position = [], 0
    for start, end, _, _ in spans:
        if start >= position:
            pieces += [line[position:start], " \x00 "]
            position = end
    pieces.append(line[position:])
    text_only = "".join(pieces)
    partial_at = where.partial_at
    found = []
    for m in _TEXT_REF.finditer(text_only):
        word = re.match(r"[a-z]+", m.group(1).lower()).group(0)  # type: ignore[union-attr]  # group 1 starts with a word
        found.append(
            FoundLink(
                relation=_TEXT_REF_RELATION.get(word, RELATES),
                url=text_only[m.start(2) : m.end(3)].strip(),
                line_no=where.line_no,
                line=where.shown,
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
        path = unquote(urlsplit(url).path)
        wanted = _GITHUB_BLOB.match("https://github.com" + path)
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
