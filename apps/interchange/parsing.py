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

import yaml

from apps.interchange.adr_links import FoundLink, find_links, strip_code
from apps.interchange.adr_status import (
    ACCEPTED,
    StatusReading,
    normalise_status,
    plain_words,
    status_table,
)

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
        if not (m and plain_words(_heading_text(m.group(2))[:200]) == name):
            continue
        paragraphs = _paragraphs(lines, i + 1)
        for quoted, para, start in paragraphs:
            if not quoted:
                return " ".join(para), start
        if paragraphs:
            return paragraphs[0][1][0], paragraphs[0][2]
        return "", i
    return None


def _paragraphs(lines: list[str], first: int) -> list[tuple[bool, list[str], int]]:
    """(quoted, lines, first line index) of each paragraph from `first` to the next heading; a
    block quote and plain text next to each other are two paragraphs."""
    paragraphs: list[tuple[bool, list[str], int]] = []
    current: list[str] = []
    quoted, start = False, first
    for j in range(first, len(lines)):
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
    return paragraphs


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


_DATE_IN_TEXT = re.compile(r"\b(\d{4}-\d{1,2}-\d{1,2})\b")


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
    front, body, first_line = _front_and_body(text)
    plain_lines = strip_code(body.splitlines())
    exported = (
        "key" in front
        and isinstance(front.get("links"), dict | type(None))
        and bool(_KEY.match(as_text(front.get("key"))))
    )
    title, title_source = _title(front, plain_lines, path, exported=exported)
    meta, first_section = _meta_lines(plain_lines)
    table = status_table(plain_lines) if "status" not in front else None
    status_text, status_source, fmt = _status(front, meta, table, plain_lines, path, first_section)
    date_value = _date_value(front, meta, table, plain_lines)
    decided_on, date_problem = parse_date(date_value)
    deciders = _deciders(front, meta, table)
    key = _KEY.match(as_text(front.get("key")))
    return ParsedAdr(
        path=path,
        title=title,
        body=_body_without_title(body, title, title_source, exported=exported),
        format="contextkb" if exported else fmt,
        status=normalise_status(status_text) if not exported else StatusReading(ACCEPTED),
        status_text=status_text,
        number=int(key.group(2)) if key else file_number(path),
        date_text=as_text(date_value) if not isinstance(date_value, dt.date) else "",
        decided_on=decided_on,
        date_problem=date_problem,
        deciders=(deciders if exported else re.sub(r"\s+", " ", deciders))[:500],
        front_matter=front,
        links=[]
        if exported
        else find_links(body, first_line=first_line) + front_matter_links(front),
        exported=exported,
        status_source=status_source if not exported else "front matter",
        status_date=_status_date(status_text, status_source, decided_on),
        title_source=title_source,
        consulted=as_text(front.get("consulted"))[:500],
        informed=as_text(front.get("informed"))[:500],
    )


def _front_and_body(raw: str) -> tuple[dict[str, Any], str, int]:
    """(front matter, the body exactly as written, the body's first line number)."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
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
    return front, body, first_line


def _title(
    front: dict[str, Any], plain_lines: list[str], path: str, *, exported: bool
) -> tuple[str, str]:
    """(title, where it was read). Front matter, then the first H1 (ATX or setext), then the
    file name (a file with no H1 usually opens with "## Context": its name says more), then
    the first heading."""
    title = as_text(front.get("title"))
    if title and exported:
        # contextkb's own export: the title exactly as it was (tabs, double spaces, newlines).
        return title[:200], "front matter"
    source = "front matter" if title else ""
    if not title:
        title, source = _first_h1(plain_lines), "heading"
    if not title:
        title = file_title(path)
        source = "file name" if title else ""
    if not title:
        title = next(
            (_heading_text(m.group(2)) for ln in plain_lines if (m := _HEADING.match(ln))), ""
        )
    if not title:
        stem = posixpath.splitext(posixpath.basename(path))[0]
        title = re.sub(r"[-_]+", " ", stem).strip() or stem
    if exported:
        return title, source
    return re.sub(r"\s+", " ", title).strip()[:200], source


def _first_h1(plain_lines: list[str]) -> str:
    for i, line in enumerate(plain_lines):
        m = _H1.match(line)
        if m:
            return _heading_text(m.group(1))
        if i + 1 < len(plain_lines) and line.strip() and _SETEXT.match(plain_lines[i + 1]):
            return line.strip()
    return ""


def _meta_lines(plain_lines: list[str]) -> tuple[dict[str, tuple[str, int]], int]:
    """Metadata lines ("- Status: accepted", "Date: 2020-01-01", "**Date:** …") by name, with
    their line index; and the index of the first section ("## …")."""
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
    return meta, first_section


def _status(front, meta, table, plain_lines: list[str], path: str, first_section: int):
    """(status as written, where it was read, the file's format)."""
    if "status" in front:
        return as_text(front["status"]), "front matter", "madr"
    if "status" in meta:
        log4brains = re.match(r"^\d{8}-", posixpath.basename(path))
        return meta["status"][0], "status line", "log4brains" if log4brains else "madr"
    if table:
        return table[0]["status"], "status table", "status-table"
    section = _section(plain_lines, "status")
    if section:
        return section[0], "status section", "nygard"
    status_text = status_source = ""
    for line in plain_lines[:first_section]:
        if re.search(r"super[sc]eded|deprecated", line, re.IGNORECASE) and not _H1.match(line):
            status_text, status_source = line.strip(), "status line"
            break
    madr = front or any(
        "decision outcome" in ln[:200].lower() for ln in plain_lines if ln.startswith("#")
    )
    return status_text, status_source, "madr" if madr else "generic"


def _date_value(front, meta, table, plain_lines: list[str]) -> Any:
    """The decision date as written: front matter, a Date line, a status table, a Date section."""
    value: Any = front.get("date") or front.get("decided_on")
    if value in (None, "") and "date" in meta:
        value = meta["date"][0]
    if value in (None, "") and table and table[0].get("date"):
        value = table[0]["date"]
    if value in (None, ""):
        section = _section(plain_lines, "date")
        value = section[0] if section else ""
    return value


def _status_date(status_text: str, status_source: str, decided_on: dt.date | None):
    """The day the status was set: "Superseded: 2019-12-19 by …", "Accepted on 2021-03-04", or
    a status table's date."""
    in_status = _DATE_IN_TEXT.search(status_text[:500])
    if in_status:
        day, _ = parse_date(in_status.group(1))
        if day is not None:
            return day
    return decided_on if status_source == "status table" and decided_on else None


def _deciders(front, meta, table) -> str:
    deciders = as_text(
        front.get("deciders") or front.get("decision-makers") or front.get("decision_makers")
    )
    if not deciders and "deciders" in meta:
        deciders = meta["deciders"][0]
    if not deciders and table and table[0].get("deciders"):
        # "[@nscuro](https://github.com/nscuro)": the names, not the markdown around them.
        deciders = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", table[0]["deciders"])
    return deciders


def _body_without_title(body: str, title: str, title_source: str, *, exported: bool) -> str:
    """The body without the H1 that repeats the title (the record shows its title on its own)."""
    if exported:
        # contextkb's export writes the title as an H1 above the body; only that one goes.
        return strip_title_heading(body, title)
    if title_source == "heading" or (
        title_source == "front matter" and strip_title_heading(body, title) != body
    ):
        return strip_title_heading(body)
    return body
