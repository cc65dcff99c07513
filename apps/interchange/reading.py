"""Reading files for import: which files are decisions, their text, and what each says beyond
the record fields (its own date, its status as written: import metadata)."""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from apps.interchange import adr_status, parsing
from apps.interchange.sources import SourceFile
from apps.interchange.summary import ImportSummary
from apps.records import owners
from apps.records.models import KIND_PREFIX, Record

log = logging.getLogger(__name__)

# Files that describe a folder rather than decide anything.
INDEX_NAMES = {"readme.md", "index.md", "readme.markdown", "index.markdown"}
_TEMPLATE_NAME = re.compile(r"(^|[-_])template$|^(adr|dr)?x{3,}([-_]|$)", re.IGNORECASE)


@dataclass
class ImportDoc:
    adr: parsing.ParsedAdr
    kind: str
    record: Record | None = None
    outcome: str = ""
    baseline: dict[str, str] | None = None  # what the last import left (digests), if any
    from_file: set[str] = field(default_factory=set)  # fields this import took from the file
    clash: bool = False  # changed in the app and in the file: not written
    committed_at: dt.datetime | None = None  # the file's last commit, when read from a checkout
    facts: dict[str, Any] = field(default_factory=dict)  # import metadata (see import_facts)
    # Set when matching: the record it updates, the path that record had (found by its
    # front-matter id after a rename), that id, and the number a new record claims.
    existing: Record | None = None
    renamed_from: str = ""
    source_id: str = ""
    number: int | None = None

    @property
    def written(self) -> Record:
        """`record`, where the import has written (or matched) this file's record."""
        if self.record is None:
            raise RuntimeError(f"{self.adr.path}: no record written for this file")
        return self.record


def decode(source: SourceFile) -> tuple[str | None, str]:
    """(text, reason it was skipped)."""
    data = source.data or b""
    if not data.strip():
        return None, "empty file"
    if b"\x00" in data[:8192] or data[:4] in (b"\x89PNG", b"PK\x03\x04", b"%PDF"):
        return None, "binary file, not markdown"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return None, f"not UTF-8 text (invalid byte at position {exc.start})"
    if "\x00" in text:
        return None, "binary file, not markdown"
    return text, ""


def skip_reason(path: str) -> str:
    name = posixpath.basename(path).lower()
    if name in INDEX_NAMES:
        return "index page, not a decision"
    if _TEMPLATE_NAME.search(posixpath.splitext(name)[0]):
        return "ADR template, not a decision"
    return ""


# An exported `owner:` (an email or `team:<slug>`) → (user, team, problem).
resolve_owner = owners.from_export


def as_list(value: Any) -> list[str]:
    """A front-matter list (or comma-separated text) of scalars; nested values are ignored."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list | tuple):
        return [
            str(v).strip()
            for v in value[:200]
            if isinstance(v, str | int | float) and not isinstance(v, bool) and str(v).strip()
        ]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [str(value)]
    return []


_STATUS_NOTES = {
    adr_status.TAG_UNSTATED: "unstated",
    adr_status.TAG_ON_HOLD: "on hold",
    adr_status.TAG_PLACEHOLDER: "template placeholder",
}


def origin_of(doc: ImportDoc) -> tuple[dt.datetime | None, str]:
    """When the record's own history says it was last decided, and where that was read: the
    date in its front matter or Date line, a date beside its status, else its last commit."""
    adr = doc.adr
    dates = [(d, src) for d, src in ((adr.decided_on, "date"), (adr.status_date, "status")) if d]
    if dates:
        day, source = max(dates, key=lambda pair: pair[0])
        if source == "status":
            where = adr.status_source or "status line"
        elif adr.front_matter.get("date") or adr.front_matter.get("decided_on"):
            where = "front matter"
        else:
            where = "status table" if adr.status_source == "status table" else "date line"
        # Noon UTC: the same calendar day in every time zone people read it in.
        return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC), where
    if doc.committed_at is not None:
        return doc.committed_at, "last commit"
    return None, ""


def import_facts_for(doc: ImportDoc) -> dict[str, Any]:
    """What the file said that has no record field: kept beside the record (ImportBaseline),
    shown on the record's page, written back on export where MADR has a name for it; never
    as tags."""
    adr = doc.adr
    origin, origin_source = origin_of(doc)
    facts: dict[str, Any] = {
        "format": adr.format,
        "title_from": adr.title_source,
        "status_from": adr.status_source,
        "status_as_written": adr.status_text.strip()[:200],
        "status_note": next(
            (_STATUS_NOTES[t] for t in adr.status.tags if t in _STATUS_NOTES),
            "unrecognised" if adr.status.unknown else "",
        ),
        "dated": origin.isoformat() if origin else "",
        "dated_from": origin_source,
        "consulted": adr.consulted,
        "informed": adr.informed,
    }
    return {k: v for k, v in facts.items() if v}


def wanted_status(doc: ImportDoc) -> str:
    adr = doc.adr
    if adr.exported:
        status = parsing.as_text(adr.front_matter.get("status")).strip().lower()
        return status if status in Record.Status.values else Record.Status.DRAFT
    return adr.status.status


def _parse(source: SourceFile) -> tuple[parsing.ParsedAdr | None, str]:
    """(the parsed file, or why it was skipped)."""
    reason = source.problem or skip_reason(source.path)
    if reason:
        return None, reason
    text, reason = decode(source)
    if reason or text is None:  # decode gives a text exactly when it gives no reason
        return None, reason
    try:
        return parsing.parse_adr(source.path, text), ""
    except parsing.FrontMatterError as exc:
        return None, str(exc)
    except (ValueError, TypeError, RecursionError, MemoryError) as exc:
        # Never let one odd file stop the others.
        log.warning("could not read %s", source.path, exc_info=True)
        return None, f"could not be read ({type(exc).__name__})"


def _kind_of(adr: parsing.ParsedAdr, default: str) -> str:
    """contextkb's own export names the kind (and its key's prefix says it); others take the
    importer's choice."""
    if not adr.exported:
        return default
    prefix = parsing.as_text(adr.front_matter["key"]).split("-")[0]
    kind = next((k for k, p in KIND_PREFIX.items() if p == prefix), default)
    fm_kind = parsing.as_text(adr.front_matter.get("kind"))
    return fm_kind if fm_kind in Record.Kind.values else kind


def read_files(
    files: list[SourceFile], *, kind: str, summary: ImportSummary
) -> tuple[list[ImportDoc], set[str]]:
    """The files that are decisions, parsed, and the (lower-cased) paths of those skipped; each
    skipped file is reported in the summary with its reason."""
    docs: list[ImportDoc] = []
    skipped_paths: set[str] = set()
    for source in files:
        adr, reason = _parse(source)
        if adr is None:
            summary.skip(source.path, reason)
            skipped_paths.add(source.path.lower())
            continue
        doc = ImportDoc(adr=adr, kind=_kind_of(adr, kind), committed_at=source.committed_at)
        doc.facts = import_facts_for(doc)
        docs.append(doc)
    return docs, skipped_paths
