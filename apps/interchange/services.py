"""Markdown import and export of a space's records.

`import_files` turns a folder's (or zip's) ADRs into records and their typed links, through the
record services only. Every file is written in its own savepoint: a bad file is reported and
skipped, never half-imported, and never stops the others. Re-importing the same folder updates the
records it created (matched by source path, or by the `key` in contextkb's own front matter).

`export_space` writes the opposite: one MADR-style file per record with YAML front matter, plus an
index.md; importing that folder into an empty space gives back the same records and links.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import posixpath
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from django.conf import settings
from django.db import DatabaseError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from apps.accounts import access
from apps.accounts.models import ApiToken, Membership, Space, Team, User
from apps.audit.models import AuditEvent
from apps.audit.services import audit_log
from apps.core.errors import Forbidden, InvalidInput, NotFound, ServiceError
from apps.interchange import parsing, sources
from apps.interchange.models import ImportBaseline, ImportJob, SourceId
from apps.interchange.sources import SourceFile, check_zip, read_zip
from apps.interchange.tasks import run_import_job
from apps.records import policy
from apps.records import services as record_services
from apps.records.models import KIND_PREFIX, Link, Record

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]

# Files that describe a folder rather than decide anything.
_INDEX_NAMES = {"readme.md", "index.md", "readme.markdown", "index.markdown"}
_TEMPLATE_NAME = re.compile(r"(^|[-_])template$|^(adr|dr)?x{3,}([-_]|$)", re.IGNORECASE)
# A link target that looks like someone's ADR (reported when it does not resolve).
_ADR_PATH = re.compile(r"(^|[/_-])(adrs?|decisions?|decision-records?)([/_-]|$)", re.IGNORECASE)
_LINK_ORDER = {Link.Type.SUPERSEDES: 0, Link.Type.AMENDS: 1}


@dataclass
class ImportSummary:
    """What an import did, file by file; also what the command, page and API show."""

    dry_run: bool = False
    space_slug: str = ""  # for the records' addresses in as_dict (none in a dry run)
    files_seen: int = 0
    created: list[dict[str, str]] = field(default_factory=list)
    updated: list[dict[str, str]] = field(default_factory=list)
    unchanged: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)
    links_created: list[dict[str, str]] = field(default_factory=list)
    links_existing: int = 0
    links_unresolved: list[dict[str, Any]] = field(default_factory=list)
    unknown_statuses: list[dict[str, str]] = field(default_factory=list)
    problems: list[dict[str, str]] = field(default_factory=list)

    def skip(self, path: str, reason: str) -> None:
        self.skipped.append({"path": path, "reason": reason})

    def problem(self, path: str, message: str) -> None:
        self.problems.append({"path": path, "message": message})

    def counts(self) -> dict[str, int]:
        return {
            "files": self.files_seen,
            "created": len(self.created),
            "updated": len(self.updated),
            "unchanged": len(self.unchanged),
            "skipped": len(self.skipped),
            "links_created": len(self.links_created),
            "links_existing": self.links_existing,
            "links_unresolved": len(self.links_unresolved),
            "unknown_statuses": len(self.unknown_statuses),
            "problems": len(self.problems),
        }

    def url(self, key: str) -> str:
        """The record's page (relative), '' in a dry run, whose keys were never saved."""
        if self.dry_run or not self.space_slug:
            return ""
        return reverse("web:record_detail", args=[self.space_slug, key])

    def _with_urls(self, entries: list[dict[str, str]]) -> list[dict[str, str]]:
        return [{**e, "url": self.url(e["key"])} for e in entries]

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "created": self._with_urls(self.created),
            "updated": self._with_urls(self.updated),
            "unchanged": self._with_urls(self.unchanged),
            "skipped": self.skipped,
            "links_created": [
                {**e, "source_url": self.url(e["source"]), "target_url": self.url(e["target"])}
                for e in self.links_created
            ],
            "links_unresolved": self.links_unresolved,
            "unknown_statuses": self.unknown_statuses,
            "problems": self.problems,
        }

    def lines(self, *, verbose: bool = False) -> list[str]:
        """A plain-text report (the command prints it; `verbose` also lists what was created)."""
        c = self.counts()
        out = [
            ("Dry run: nothing was saved. " if self.dry_run else "")
            + f"{c['files']} files: {c['created']} created, {c['updated']} updated, "
            f"{c['unchanged']} unchanged, {c['skipped']} skipped.",
            f"Links: {c['links_created']} created, {c['links_existing']} already there, "
            f"{c['links_unresolved']} unresolved.",
        ]
        if verbose and self.created:
            out.append("Created:")
            out += [f"  {c['key']}: {c['path']}" for c in self.created]
        if self.updated:
            out.append("Updated:")
            out += [f"  {u['key']}: {u['path']}" for u in self.updated]
        if self.skipped:
            out.append("Skipped:")
            out += [f"  {s['path']}: {s['reason']}" for s in self.skipped]
        if self.links_unresolved:
            out.append("Unresolved links (target missing):")
            out += [
                f"  {u['path']}:{u['line']}: {u['relation']} {u['target']}"
                + (f" ({u['note']})" if u.get("note") else "")
                for u in self.links_unresolved
            ]
        if self.unknown_statuses:
            out.append("Unknown statuses (imported as draft; the word is kept as import metadata):")
            out += [f"  {u['path']}: {u['status']!r}" for u in self.unknown_statuses]
        if self.problems:
            out.append("Notes:")
            out += [f"  {p['path']}: {p['message']}" for p in self.problems]
        return out


@dataclass
class _Doc:
    adr: parsing.ParsedAdr
    kind: str
    record: Record | None = None
    outcome: str = ""
    baseline: dict[str, str] | None = None  # what the last import left (digests), if any
    from_file: set[str] = field(default_factory=set)  # fields this import took from the file
    clash: bool = False  # changed in the app and in the file: not written
    committed_at: dt.datetime | None = None  # the file's last commit, when read from a checkout
    facts: dict[str, Any] = field(default_factory=dict)  # import metadata (see import_facts)


# --- re-imports: three-way, field by field ----------------------------------------------------
#
# After each import the record's file-controlled fields are remembered (a digest each). The next
# import writes a field only when the file changed it since; when the app changed the same field
# to something else meanwhile, nothing of that file is written and the summary says so. So
# re-importing an unchanged folder never undoes an edit, a verification or a status set in the app.


def _tracked(record: Record) -> dict[str, Any]:
    owner = (
        f"user:{record.owner_user_id}"
        if record.owner_user_id
        else (f"team:{record.owner_team_id}" if record.owner_team_id else "")
    )
    return {
        "title": record.title,
        "summary": record.summary,
        "body": record.body,
        "status": record.status,
        "owner": owner,
        "tags": list(record.tags),
        "anchors": list(record.anchors),
        "reversibility": record.reversibility,
        "impact": record.impact,
        "decided_on": record.decided_on,
        "deciders": record.deciders,
        "valid_until": record.valid_until,
        "next_review_at": record.next_review_at,
        "last_verified_at": record.last_verified_at,
        "archived": record.archived_at is not None,
    }


def _tracked_name(field_name: str) -> str:
    return "owner" if field_name in ("owner_user", "owner_team") else field_name


def _digest(value: Any) -> str:
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC).isoformat()
    text = json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class _Clash(Exception):
    """Changed in the app and in the file since the last import: the file is not written."""

    def __init__(self, fields: list[str]):
        self.fields = fields
        super().__init__(
            f"changed in contextkb since the last import, and in the file too ({', '.join(fields)})"
            ": not overwritten. Bring the two together (in the file or in contextkb), or import "
            "again with overwrite-edits"
        )


def _file_changed(doc: _Doc, name: str, value: Any) -> bool:
    """Whether the file asks for something other than what the last import left."""
    changed = doc.baseline is None or _digest(value) != doc.baseline.get(name)
    if changed:
        doc.from_file.add(name)
    return changed


def _merge(doc: _Doc, existing: Record, changes: dict[str, Any]) -> dict[str, Any]:
    """The changes a re-import may write: only fields the file changed; raises _Clash when the
    app changed one of those too (to something else)."""
    if doc.baseline is None:
        return changes
    current = _tracked(existing)
    wanted = {_tracked_name(k): v for k, v in changes.items() if k != "owner_team"}
    if "owner_user" in changes or "owner_team" in changes:
        user, team = changes.get("owner_user"), changes.get("owner_team")
        wanted["owner"] = f"user:{user.pk}" if user else (f"team:{team.pk}" if team else "")
    from_file = {n for n, v in wanted.items() if _file_changed(doc, n, v)}
    clash = sorted(
        n
        for n in from_file
        if _digest(current[n]) != doc.baseline.get(n) and _digest(current[n]) != _digest(wanted[n])
    )
    if clash:
        raise _Clash(clash)
    return {k: v for k, v in changes.items() if _tracked_name(k) in from_file}


def _remember_baselines(docs: list[_Doc]) -> None:
    """For each field: what this import wrote, or, where the file did not change it, what the
    file said before (never an edit made in the app, which would then look like the file's)."""
    by_pk = {d.record.pk: d for d in docs if d.record is not None and not d.clash}
    now = timezone.now()
    rows = []
    for record in Record.objects.filter(pk__in=list(by_pk)):
        doc = by_pk[record.pk]
        fields = {n: _digest(v) for n, v in _tracked(record).items()}
        for name, old in (doc.baseline or {}).items():
            if name not in doc.from_file:
                fields[name] = old
        rows.append(ImportBaseline(record=record, fields=fields, facts=doc.facts, imported_at=now))
    ImportBaseline.objects.bulk_create(
        rows,
        update_conflicts=True,
        unique_fields=["record"],
        update_fields=["fields", "facts", "imported_at"],
    )


def _require_edit(actor, space: Space) -> None:
    if not access.can_view(actor, space):
        raise NotFound(f"Space {space.slug!r} not found.")
    if not access.can_edit(actor, space):
        raise Forbidden(f"You need to be an editor of {space.name} to import records.")


def _decode(source: SourceFile) -> tuple[str | None, str]:
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


def _skip_reason(path: str) -> str:
    name = posixpath.basename(path).lower()
    if name in _INDEX_NAMES:
        return "index page, not a decision"
    if _TEMPLATE_NAME.search(posixpath.splitext(name)[0]):
        return "ADR template, not a decision"
    return ""


def _resolve_owner(value: Any, *, space: Space) -> tuple[User | None, Team | None, str]:
    """An exported `owner:` (an email or `team:<slug>`) → (user, team, problem)."""
    text = str(value or "").strip()
    if not text:
        return None, None, ""
    if text.startswith("team:"):
        team = Team.objects.filter(slug=text[5:]).first()
        return (None, team, "") if team else (None, None, f"unknown team {text[5:]!r}")
    user = User.objects.filter(email__iexact=text).first()
    if user is None:
        return None, None, f"owner {text!r} has no account here"
    if not Membership.objects.filter(user=user, space=space).exists():
        return None, None, f"owner {text!r} is not a member of {space.name}"
    return user, None, ""


def _as_list(value: Any) -> list[str]:
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


def _fields_for(
    doc: _Doc, *, space: Space, owner: User | None, summary: ImportSummary
) -> dict[str, Any]:
    """The record fields a file asks for (status handled by the caller)."""
    adr = doc.adr
    fm = adr.front_matter
    fields: dict[str, Any] = {
        "title": adr.title,
        "body": adr.body,
        "decided_on": adr.decided_on,
        "deciders": adr.deciders,
        # Import facts (an unstated or unknown status) are import metadata, never tags: tags
        # are the team's vocabulary and feed every editor's suggestions.
        "tags": [],
    }
    if adr.date_problem:
        summary.problem(adr.path, f"{adr.date_problem}; imported without a date")
    if adr.exported:
        fields["summary"] = parsing.as_text(fm.get("summary")).replace("\n", " ")[:300]
        fields["tags"] = [t.lower() for t in _as_list(fm.get("tags"))]
        fields["anchors"] = _as_list(fm.get("anchors"))
        fields["reversibility"] = parsing.as_text(fm.get("reversibility"))
        fields["impact"] = parsing.as_text(fm.get("impact"))
        valid_until, problem = parsing.parse_date(fm.get("valid_until"))
        if problem:
            summary.problem(adr.path, f"valid_until: {problem}")
        fields["valid_until"] = valid_until
        if "owner" in fm:
            user, team, problem = _resolve_owner(fm.get("owner"), space=space)
            if problem:
                summary.problem(adr.path, f"{problem}; imported as owned by the importer's choice")
            fields["owner_user"] = user or (owner if team is None else None)
            fields["owner_team"] = team
        else:
            fields["owner_user"] = owner
    else:
        fields["owner_user"] = owner
    return fields


def _wanted_status(doc: _Doc) -> str:
    adr = doc.adr
    if adr.exported:
        status = parsing.as_text(adr.front_matter.get("status")).strip().lower()
        return status if status in Record.Status.values else Record.Status.DRAFT
    return adr.status.status


def _write_record(
    doc: _Doc,
    *,
    space: Space,
    actor,
    owner: User | None,
    existing: Record | None,
    number: int | None,
    summary: ImportSummary,
) -> None:
    adr = doc.adr
    fields = _fields_for(doc, space=space, owner=owner, summary=summary)
    status = _wanted_status(doc)
    if existing is None:
        # A record cannot be created superseded; its successor's supersedes link will mark it.
        # Until then (or if the successor is never found) it is deprecated.
        create_status = Record.Status.DEPRECATED if status == Record.Status.SUPERSEDED else status
        record = record_services.record_create(
            space=space,
            kind=doc.kind,
            actor=actor,
            status=create_status,
            number=number,
            source_path=adr.path,
            message=f"Imported from {adr.path}"[:300],
            **fields,
        )
        if not adr.exported:
            _start_review_clock(record, doc)
        doc.record, doc.outcome = record, "created"
        summary.created.append({"path": adr.path, "key": record.key})
    else:
        changes = dict(fields)
        if not adr.exported or "owner" not in adr.front_matter:
            # Keep an owner someone set in the app; only fill in a missing one.
            changes.pop("owner_user", None)
            changes.pop("owner_team", None)
            if existing.owner_user_id is None and existing.owner_team_id is None and owner:
                changes["owner_user"] = owner
        # Tags added in the app survive a re-import.
        changes["tags"] = list(existing.tags) + [
            t for t in fields["tags"] if t not in existing.tags
        ]
        # A superseded status belongs to the supersedes link; a file cannot set or undo it.
        if existing.status != Record.Status.SUPERSEDED and status != Record.Status.SUPERSEDED:
            changes["status"] = status
        changes = _merge(doc, existing, changes)
        if any(t in existing.tags for t in adr.status.tags):
            # The status-… tags earlier imports wrote for this file's status are import
            # metadata now; they go whatever else the merge keeps.
            changes["tags"] = [t for t in existing.tags if t not in adr.status.tags]
        if not adr.exported and existing.last_verified_at is None:
            # Imported before its own date was read, and never verified since: its clock too.
            _start_review_clock(existing, doc)
        if all(getattr(existing, name) == value for name, value in changes.items()):
            # Nothing differs: skip the locked read-and-compare of record_update.
            doc.record, doc.outcome = existing, "unchanged"
            summary.unchanged.append({"path": adr.path, "key": existing.key})
            return
        before = existing.version
        record = record_services.record_update(
            record=existing,
            actor=actor,
            # Someone saving it in the app while the import runs wins; this file is reported.
            expected_version=existing.version,
            changes=changes,
            message=f"Re-imported from {adr.path}"[:300],
            allow_archived=True,
        )
        doc.record = record
        doc.outcome = "updated" if record.version != before else "unchanged"
        entry = {"path": adr.path, "key": record.key}
        (summary.updated if doc.outcome == "updated" else summary.unchanged).append(entry)


_STATUS_NOTES = {
    parsing.TAG_UNSTATED: "unstated",
    parsing.TAG_ON_HOLD: "on hold",
    parsing.TAG_PLACEHOLDER: "template placeholder",
}


def _origin(doc: _Doc) -> tuple[dt.datetime | None, str]:
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


def import_facts_for(doc: _Doc) -> dict[str, Any]:
    """What the file said that has no record field: kept beside the record (ImportBaseline),
    shown on the record's page, written back on export where MADR has a name for it; never
    as tags."""
    adr = doc.adr
    origin, origin_source = _origin(doc)
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


def _start_review_clock(record: Record, doc: _Doc) -> None:
    """Start a new record's review clock at its own date, not at the import: an ADR from 2018
    that nobody has verified here is due for a first verification at once."""
    origin, _ = _origin(doc)
    if origin is None or origin >= record.created_at:
        return
    record.created_at = origin
    record.next_review_at = policy.next_review_at(record, now=origin)
    doc.from_file.add("next_review_at")  # the file's date set it: not an edit made in the app
    Record.objects.filter(pk=record.pk).update(
        created_at=record.created_at, next_review_at=record.next_review_at
    )
    record_services.refresh_freshness(record)


def _remember_id(doc: _Doc, *, space: Space, value: str, renamed_from: str) -> None:
    """Bind a front-matter id to its record (and move the record to the file's new path)."""
    SourceId.objects.update_or_create(space=space, value=value, defaults={"record": doc.record})
    if renamed_from and renamed_from != doc.adr.path:
        Record.objects.filter(pk=doc.record.pk).update(source_path=doc.adr.path)
        doc.record.source_path = doc.adr.path


def _finish_exported(doc: _Doc, *, actor, summary: ImportSummary) -> None:
    """What contextkb's own export says beyond the fields, applied once the links exist: the
    status (a supersedes link marks its target superseded, but a partly superseded record keeps
    its own), then the review dates (a status edit by the owner would move them), then the
    archived flag (an archived record cannot gain a supersedes link, so it is archived last)."""
    record = Record.objects.get(pk=doc.record.pk)
    status = _wanted_status(doc)
    if (
        status != Record.Status.SUPERSEDED
        and record.status != status
        and _file_changed(doc, "status", status)
    ):
        record = record_services.record_update(
            record=record,
            actor=actor,
            expected_version=None,
            changes={"status": status},
            message=f"Status as exported ({status})",
            allow_archived=True,
        )
    _apply_exported_extras(record, doc, actor=actor, summary=summary)


def _apply_exported_extras(record: Record, doc: _Doc, *, actor, summary) -> None:
    """Review dates and the archived flag from contextkb's own export."""
    fm, path = doc.adr.front_matter, doc.adr.path
    updates: dict[str, Any] = {}
    for name in ("next_review_at", "last_verified_at"):
        value = fm.get(name)
        if value in (None, ""):
            continue
        when = value if isinstance(value, dt.datetime) else None
        if when is None:
            try:
                when = dt.datetime.fromisoformat(parsing.as_text(value))
            except ValueError:
                summary.problem(path, f"{name}: invalid date-time {parsing.as_text(value)[:40]!r}")
                continue
        if timezone.is_naive(when):
            when = timezone.make_aware(when, dt.UTC)
        if getattr(record, name) != when and _file_changed(doc, name, when):
            updates[name] = when
    if updates:
        Record.objects.filter(pk=record.pk).update(**updates)
        for name, value in updates.items():
            setattr(record, name, value)
        record_services.refresh_freshness(record)
    archived = fm.get("archived") is True
    if archived and record.archived_at is None and _file_changed(doc, "archived", archived):
        record_services.record_archive(record=record, actor=actor)


def _number_candidates(docs_by_dir: dict[str, list[_Doc]], source: str, number: int, prefix: str):
    same_dir = [
        d
        for d in docs_by_dir.get(posixpath.dirname(source), [])
        if parsing.file_number(d.adr.path) == number
    ]
    if prefix:
        named = [d for d in same_dir if posixpath.basename(d.adr.path).lower().startswith(prefix)]
        same_dir = named or same_dir
    return same_dir


@dataclass
class _WantedLink:
    source: _Doc
    target: _Doc
    type: str
    partial: bool
    where: str
    inferred: bool = False  # a relates_to read from a plain mention (one per pair is enough)
    note: str | None = None  # contextkb's export: the link's note as it was


def _collect_links(
    docs: list[_Doc],
    *,
    space: Space,
    skipped_paths: set[str],
    summary: ImportSummary,
) -> list[_WantedLink]:
    by_path = {d.adr.path.lower(): d for d in docs}
    paths = {d.adr.path.lower(): d.adr.path for d in docs}
    docs_by_dir: dict[str, list[_Doc]] = {}
    for d in docs:
        docs_by_dir.setdefault(posixpath.dirname(d.adr.path), []).append(d)
    adr_dirs = set(docs_by_dir)
    by_key = {str(d.adr.front_matter.get("key")): d for d in docs if d.adr.exported}

    typed: dict[tuple[int, int, str], _WantedLink] = {}
    related: dict[frozenset[int], _WantedLink] = {}

    def unresolved(doc: _Doc, link: parsing.FoundLink, note: str = "") -> None:
        summary.links_unresolved.append(
            {
                "path": doc.adr.path,
                "line": link.line_no,
                "relation": link.relation.replace("_", " "),
                "target": link.url,
                "note": note,
            }
        )

    def want(
        source: _Doc,
        target: _Doc,
        relation: str,
        partial: bool,
        where: str,
        exact: bool = False,
        note: str | None = None,
    ) -> None:
        if source.record is None or target.record is None or source is target:
            return
        if relation == parsing.SUPERSEDED_BY:
            source, target, link_type = target, source, Link.Type.SUPERSEDES
        elif relation == parsing.AMENDED_BY:
            source, target, link_type = target, source, Link.Type.AMENDS
        elif relation in (parsing.SUPERSEDES, Link.Type.SUPERSEDES):
            link_type = Link.Type.SUPERSEDES
        elif relation in (parsing.AMENDS, Link.Type.AMENDS):
            link_type = Link.Type.AMENDS
        elif relation in Link.Type.values and (exact or relation != Link.Type.RELATES_TO):
            # Exported front matter says exactly which links exist, relates_to included.
            link_type = relation
        else:
            pair = frozenset((source.record.pk, target.record.pk))
            related.setdefault(
                pair, _WantedLink(source, target, Link.Type.RELATES_TO, False, where, inferred=True)
            )
            return
        key = (source.record.pk, target.record.pk, link_type)
        if key in typed:
            typed[key].partial = typed[key].partial or partial
        else:
            typed[key] = _WantedLink(source, target, link_type, partial, where, note=note)

    # The repositories the imported folder lives in, as far as its own GitHub links show:
    # those that lead to another imported file.
    home_repos = {
        parsing.github_repo(link.url)
        for doc in docs
        for link in doc.adr.links[: parsing.MAX_LINKS_PER_FILE]
        if link.number is None
        and parsing.github_repo(link.url)
        and parsing.resolve_url(link.url, source=doc.adr.path, paths=paths)
        not in (None, doc.adr.path)
    }

    for doc in docs:
        if doc.record is None:
            continue
        adr = doc.adr
        if adr.exported:
            links = adr.front_matter.get("links") or {}
            if not isinstance(links, dict):
                summary.problem(adr.path, "front matter `links` is not a mapping; links ignored")
                continue
            notes = adr.front_matter.get("link_notes") or {}
            notes = notes if isinstance(notes, dict) else {}
            for link_type, keys in links.items():
                if link_type not in Link.Type.values:
                    summary.problem(adr.path, f"unknown link type {link_type!r}")
                    continue
                for key in _as_list(keys):
                    target = by_key.get(key)
                    if target is None:
                        summary.links_unresolved.append(
                            {
                                "path": adr.path,
                                "line": 1,
                                "relation": link_type,
                                "target": key,
                                "note": "",
                            }
                        )
                        continue
                    want(
                        doc,
                        target,
                        link_type,
                        False,
                        f"{adr.path} front matter",
                        exact=True,
                        note=parsing.as_text(notes.get(f"{link_type} {key}"))[:300],
                    )
            continue
        if len(adr.links) > parsing.MAX_LINKS_PER_FILE:
            summary.problem(
                adr.path,
                f"more than {parsing.MAX_LINKS_PER_FILE} links; only the first "
                f"{parsing.MAX_LINKS_PER_FILE} were followed",
            )
        for link in adr.links[: parsing.MAX_LINKS_PER_FILE]:
            target_doc: _Doc | None = None
            if link.number is not None:
                candidates = _number_candidates(docs_by_dir, adr.path, link.number, link.prefix)
                candidates = [c for c in candidates if c is not doc]
                linking_back = (
                    [c for c in candidates if _links_to(c, doc, paths)]
                    if len(candidates) > 1
                    else []
                )
                if len(candidates) > 1 and len(linking_back) == 1:
                    # Two files share the number; only one of them links back to this file.
                    target_doc = linking_back[0]
                    summary.problem(
                        adr.path,
                        f"line {link.line_no}: {link.url!r} matches {len(candidates)} files; "
                        f"linked to {target_doc.adr.path}, the one that links back here",
                    )
                elif len(candidates) == 1:
                    target_doc = candidates[0]
                elif candidates:
                    unresolved(
                        doc,
                        link,
                        "ambiguous: " + ", ".join(sorted(c.adr.path for c in candidates)),
                    )
                    continue
                else:
                    unresolved(doc, link, "no ADR with that number")
                    continue
            else:
                real = parsing.resolve_url(link.url, source=adr.path, paths=paths)
                repo = parsing.github_repo(link.url)
                if real == adr.path and repo and repo not in home_repos:
                    # This file's own path, in a repository no other link of the import points
                    # into: most likely another repository (a private twin, a fork).
                    unresolved(doc, link, f"this file's own path, in github.com/{repo}")
                    continue
                if real is not None:
                    target_doc = by_path[real.lower()]
                else:
                    typed_relation = link.relation != parsing.RELATES
                    resolved = _relative_target(link.url, adr.path)
                    if resolved is not None and resolved.lower() in skipped_paths:
                        continue
                    in_adr_dir = resolved is not None and posixpath.dirname(resolved) in adr_dirs
                    adr_like = parsing.file_number(
                        link.url.split("#")[0].rstrip("/").rsplit("/", 1)[-1]
                    ) is not None and bool(_ADR_PATH.search(link.url))
                    if not (
                        parsing.looks_like_adr_link(link.url)
                        and (typed_relation or in_adr_dir or adr_like)
                    ):
                        continue
                    note = ""
                    if typed_relation and link.fallback_number is not None:
                        candidates = [
                            c
                            for c in _number_candidates(
                                docs_by_dir, adr.path, link.fallback_number, link.fallback_prefix
                            )
                            if c is not doc
                        ]
                        if len(candidates) == 1:
                            target_doc = candidates[0]
                            note = f"matched by its number to {target_doc.adr.path}"
                    unresolved(doc, link, note)
                    if target_doc is None:
                        continue
            if target_doc is doc:
                continue
            want(doc, target_doc, link.relation, link.partial, f"{adr.path}:{link.line_no}")

    # A typed link between two records makes a relates_to between them redundant.
    typed_pairs = {frozenset((s, t)) for s, t, _ in typed}
    result = sorted(typed.values(), key=lambda w: _LINK_ORDER.get(w.type, 2))
    result += [w for pair, w in related.items() if pair not in typed_pairs]
    return result


def _links_to(doc: _Doc, target: _Doc, paths: dict[str, str]) -> bool:
    """Whether `doc` has a markdown link to `target`'s file."""
    return any(
        link.number is None
        and parsing.resolve_url(link.url, source=doc.adr.path, paths=paths) == target.adr.path
        for link in doc.adr.links[: parsing.MAX_LINKS_PER_FILE]
    )


def _relative_target(url: str, source: str) -> str | None:
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme or parts.netloc or not parts.path:
        return None
    return posixpath.normpath(posixpath.join(posixpath.dirname(source), unquote(parts.path)))


def _write_links(
    wanted: list[_WantedLink], *, actor, summary: ImportSummary, progress: Progress | None
) -> None:
    ids = {w.source.record.pk for w in wanted} | {w.target.record.pk for w in wanted}
    existing = set(
        Link.objects.filter(source_id__in=ids, target_id__in=ids).values_list(
            "source_id", "target_id", "type"
        )
    )
    existing_pairs = {frozenset((s, t)) for s, t, _ in existing}
    for done, w in enumerate(wanted):
        if progress:
            progress("links", done, len(wanted))
        source, target = w.source.record, w.target.record
        if (source.pk, target.pk, w.type) in existing or (
            w.inferred and frozenset((source.pk, target.pk)) in existing_pairs
        ):
            summary.links_existing += 1
            continue
        try:
            with transaction.atomic():
                # Re-read both ends: an earlier link may have changed a status.
                source = Record.objects.get(pk=source.pk)
                target = Record.objects.get(pk=target.pk)
                record_services.record_link(
                    source=source,
                    target=target,
                    type=w.type,
                    actor=actor,
                    note=w.note
                    if w.note is not None
                    else (("Partly: " if w.partial else "") + f"imported from {w.where}")[:300],
                )
                target_status = _wanted_status(w.target)
                if (
                    w.type == Link.Type.SUPERSEDES
                    and w.partial
                    and target_status != Record.Status.SUPERSEDED
                ):
                    # "Supersedes some aspects of X": X still holds in part, keep its own status.
                    record_services.record_update(
                        record=Record.objects.get(pk=target.pk),
                        actor=actor,
                        expected_version=None,
                        changes={"status": target_status},
                        message=f"Only partly superseded by {source.key}; keeps its status",
                        allow_archived=True,
                    )
        except ServiceError as exc:
            summary.problem(
                w.where.split(":")[0],
                f"link {source.key} {w.type} {target.key} not created: {exc.message}",
            )
            continue
        existing_pairs.add(frozenset((source.pk, target.pk)))
        summary.links_created.append(
            {"source": source.key, "type": w.type, "target": target.key, "where": w.where}
        )
    if progress and wanted:
        progress("links", len(wanted), len(wanted))


def import_files(
    *,
    space: Space,
    files: list[SourceFile],
    actor,
    kind: str = Record.Kind.DECISION,
    owner: User | None = None,
    dry_run: bool = False,
    overwrite_edits: bool = False,
    progress: Progress | None = None,
) -> ImportSummary:
    """Import markdown files into `space`; returns what happened to each. See the module doc.

    `overwrite_edits`: the files win over edits made in the app since the last import (by
    default such a file is reported and left alone)."""
    _require_edit(actor, space)
    if kind not in Record.Kind.values:
        raise InvalidInput(f"Unknown kind {kind!r}; use one of {', '.join(Record.Kind.values)}.")
    if owner is not None and not Membership.objects.filter(user=owner, space=space).exists():
        raise InvalidInput(f"{owner.email} is not a member of {space.name}, so cannot own records.")
    summary = ImportSummary(dry_run=dry_run, space_slug=space.slug, files_seen=len(files))
    args = (space, files, actor, kind, owner, overwrite_edits, summary, progress)
    if dry_run:
        with transaction.atomic():
            _run(*args)
            transaction.set_rollback(True)
    else:
        _run(*args)
    return summary


def _run(space, files, actor, kind, owner, overwrite_edits, summary: ImportSummary, progress):
    docs: list[_Doc] = []
    skipped_paths: set[str] = set()
    for source in files:
        reason = source.problem or _skip_reason(source.path)
        text = None
        if not reason:
            text, reason = _decode(source)
        if not reason:
            try:
                adr = parsing.parse_adr(source.path, text)
            except parsing.FrontMatterError as exc:
                reason = str(exc)
            except (ValueError, TypeError, RecursionError, MemoryError) as exc:
                # Never let one odd file stop the others.
                log.warning("could not read %s", source.path, exc_info=True)
                reason = f"could not be read ({type(exc).__name__})"
        if reason:
            summary.skip(source.path, reason)
            skipped_paths.add(source.path.lower())
            continue
        doc_kind = kind
        if adr.exported:
            prefix = parsing.as_text(adr.front_matter["key"]).split("-")[0]
            doc_kind = next((k for k, p in KIND_PREFIX.items() if p == prefix), kind)
            fm_kind = parsing.as_text(adr.front_matter.get("kind"))
            doc_kind = fm_kind if fm_kind in Record.Kind.values else doc_kind
        doc = _Doc(adr=adr, kind=doc_kind, committed_at=source.committed_at)
        doc.facts = import_facts_for(doc)
        docs.append(doc)

    existing_by_path = {
        r.source_path: r for r in Record.objects.filter(space=space).exclude(source_path="")
    }
    # Front-matter ids (`id: adr-12`): a renamed file is still the same record.
    ids: dict[int, str] = {}
    by_id: dict[str, list[_Doc]] = {}
    for d in docs:
        value = "" if d.adr.exported else parsing.as_text(d.adr.front_matter.get("id"))[:200]
        if value:
            ids[id(d)] = value
            by_id.setdefault(value, []).append(d)
    for value, sharing in by_id.items():
        if len(sharing) > 1:
            for d in sharing:
                del ids[id(d)]
                summary.problem(
                    d.adr.path,
                    f"front-matter id {value!r} is used by {len(sharing)} files; "
                    "matched by its path only",
                )
    existing_by_id = {
        s.value: s.record
        for s in SourceId.objects.filter(space=space, value__in=set(ids.values())).select_related(
            "record"
        )
    }
    paths_in_import = {d.adr.path for d in docs}
    exported_keys = [str(d.adr.front_matter.get("key")) for d in docs if d.adr.exported]
    existing_by_key = {r.key: r for r in Record.objects.filter(space=space, key__in=exported_keys)}
    taken = set(Record.objects.filter(space=space).values_list("kind", "number"))

    def match(doc: _Doc) -> tuple[Record | None, str]:
        """The record this file updates (and the path it had, when found by its id)."""
        adr = doc.adr
        existing = existing_by_path.get(adr.path)
        if existing is None and adr.exported and adr.front_matter.get("space") == space.slug:
            # Matching by key only within the space the file was exported from: another space's
            # DEC-10 is a different decision and must not be overwritten.
            existing = existing_by_key.get(parsing.as_text(adr.front_matter.get("key")))
        fm_id = ids.get(id(doc), "")
        if existing is None and fm_id in existing_by_id:
            candidate = existing_by_id[fm_id]
            # Not when its own file is in this import too (the id was copied, not moved).
            if candidate.source_path not in paths_in_import:
                return candidate, candidate.source_path
        return existing, ""

    matches = {id(d): match(d) for d in docs}
    baselines = (
        {}
        if overwrite_edits
        else dict(
            ImportBaseline.objects.filter(record__space=space).values_list("record_id", "fields")
        )
    )
    # Each new file keeps the number in its name when that number is free: the first file (by
    # path) to name a number claims it, and every claim is written before any file that needs
    # a fresh number, so a clash (ADR/ADR002 and decision-record/DR002) never shifts the rest.
    claims: dict[int, int] = {}
    claimed = set(taken)
    for d in sorted(docs, key=lambda d: (d.adr.number or 0, d.adr.path)):
        wanted = (d.kind, d.adr.number)
        if matches[id(d)][0] is None and d.adr.number and wanted not in claimed:
            claims[id(d)] = d.adr.number
            claimed.add(wanted)
    docs.sort(key=lambda d: (id(d) not in claims, d.adr.number or 0, d.adr.path))
    total = len(docs)
    for done, doc in enumerate(docs, 1):
        adr = doc.adr
        existing, renamed_from = matches[id(doc)]
        if existing is not None:
            doc.baseline = baselines.get(existing.pk)
        fm_id = ids.get(id(doc), "")
        number = claims.get(id(doc))
        if adr.status.unknown and not adr.exported:
            summary.unknown_statuses.append({"path": adr.path, "status": adr.status.unknown})
        try:
            with transaction.atomic():
                _write_record(
                    doc,
                    space=space,
                    actor=actor,
                    owner=owner,
                    existing=existing,
                    number=number,
                    summary=summary,
                )
                if fm_id:
                    _remember_id(doc, space=space, value=fm_id, renamed_from=renamed_from)
                    if renamed_from != adr.path and renamed_from:
                        summary.problem(
                            adr.path,
                            f"{doc.record.key} found by its front-matter id {fm_id!r}: "
                            f"renamed from {renamed_from}",
                        )
        except _Clash as exc:
            # Nothing of this file is written; links to and from it still count.
            doc.record, doc.clash = existing, True
            summary.skip(adr.path, str(exc))
        except ServiceError as exc:
            doc.record = None
            details = "; ".join(
                f"{k}: {' '.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in (exc.details.items() if isinstance(exc.details, dict) else [])
            )
            summary.skip(adr.path, exc.message + (f" ({details})" if details else ""))
        except DatabaseError as exc:
            doc.record = None
            log.warning("import of %s failed: %s", adr.path, exc)
            summary.skip(adr.path, f"could not be saved ({str(exc).splitlines()[0]})")
        if progress:
            progress("records", done, total)

    imported = [d for d in docs if d.record is not None]
    wanted = _collect_links(imported, space=space, skipped_paths=skipped_paths, summary=summary)
    _write_links(wanted, actor=actor, summary=summary, progress=progress)
    for doc in imported:
        if not doc.adr.exported or doc.clash:
            continue
        try:
            with transaction.atomic():
                _finish_exported(doc, actor=actor, summary=summary)
        except ServiceError as exc:
            summary.problem(doc.adr.path, f"status, review dates or archived flag: {exc.message}")

    for doc in imported:
        if _wanted_status(doc) != Record.Status.SUPERSEDED:
            continue
        status = Record.objects.filter(pk=doc.record.pk).values_list("status", flat=True).first()
        if status != Record.Status.SUPERSEDED:
            summary.problem(
                doc.adr.path,
                f"says {(doc.adr.status_text or 'superseded')[:80]!r} but no successor was "
                "found; imported as deprecated",
            )
    _remember_baselines(imported)


def facts_for(record_ids) -> dict[int, dict[str, Any]]:
    """Import metadata of these records (what their files said that has no record field)."""
    return dict(
        ImportBaseline.objects.filter(record_id__in=list(record_ids)).values_list(
            "record_id", "facts"
        )
    )


def in_step_with_files(record_ids) -> set[int]:
    """The records whose every file-decided field is what their file last said (no edit made
    in the app since the last import)."""
    baselines = dict(
        ImportBaseline.objects.filter(record_id__in=list(record_ids)).values_list(
            "record_id", "fields"
        )
    )
    return {
        record.pk
        for record in Record.objects.filter(pk__in=list(baselines))
        if all(
            _digest(value) == baselines[record.pk].get(name)
            for name, value in _tracked(record).items()
        )
    }


# --- export -----------------------------------------------------------------------------------


def _owner_value(record: Record) -> str:
    if record.owner_user_id:
        return record.owner_user.email
    if record.owner_team_id:
        return f"team:{record.owner_team.slug}"
    return ""


def safe_relative(path: str) -> bool:
    """A path that stays inside the export folder (and inside the zip's one folder)."""
    parts = path.split("/")
    return (
        bool(path)
        and not path.startswith("/")
        and "\\" not in path
        and "\x00" not in path
        and ":" not in parts[0]
        and all(part not in ("", ".", "..") for part in parts)
        and sources.is_markdown(path)
    )


def export_filename(record: Record) -> str:
    """Where a record is written: its original import path when it has one (so relative links
    in its body keep working), else ``<key>-<slug>.md``."""
    path = record.source_path
    if path and safe_relative(path) and posixpath.basename(path).lower() not in _INDEX_NAMES:
        return path
    return f"{record.key}-{slugify(record.title)[:60] or 'record'}.md"


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper, data):
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str_presenter)


def render_record(
    record: Record,
    links: dict[str, list[str]],
    link_notes: dict[str, str] | None = None,
    facts: dict[str, Any] | None = None,
) -> str:
    """One record as MADR 4 markdown: YAML front matter (MADR 4's names: `decision-makers`,
    `consulted`, `informed`, plus contextkb's own keys), the title as an H1, then the body."""
    facts = facts or {}
    fm: dict[str, Any] = {
        "key": record.key,
        "space": record.space.slug,
        "kind": record.kind,
        "title": record.title,
        "status": record.status,
        "date": record.decided_on,
        "decision-makers": record.deciders or None,
        "consulted": facts.get("consulted") or None,
        "informed": facts.get("informed") or None,
        "summary": record.summary or None,
        "owner": _owner_value(record) or None,
        "tags": list(record.tags) or None,
        "anchors": list(record.anchors) or None,
        "reversibility": record.reversibility or None,
        "impact": record.impact or None,
        "valid_until": record.valid_until,
        "next_review_at": record.next_review_at.isoformat() if record.next_review_at else None,
        "last_verified_at": record.last_verified_at.isoformat()
        if record.last_verified_at
        else None,
        "archived": True if record.archived_at else None,
        "links": dict(sorted(links.items())) or None,
        # "supersedes DEC-3": "Partly: …" (only links that have a note).
        "link_notes": dict(sorted((link_notes or {}).items())) or None,
    }
    fm = {k: v for k, v in fm.items() if v is not None}
    header = yaml.dump(fm, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    body = record.body
    if parsing.strip_title_heading(body) == body:
        # MADR opens with the title as an H1; a body that already opens with one keeps its own.
        heading = " ".join(record.title.split())
        # A closing " #" keeps a title that ends in "#" ("Use C#") whole when read back.
        body = f"# {heading}{' #' if heading.endswith('#') else ''}\n\n{body}"
    return f"---\n{header}---\n{body}"


@dataclass
class ExportedFile:
    path: str
    content: str


def export_space(*, space: Space, actor, include_archived: bool = True) -> list[ExportedFile]:
    """Every record of a space as markdown files plus an index.md (nothing written to disk)."""
    if not access.can_view(actor, space):
        raise NotFound(f"Space {space.slug!r} not found.")
    records = list(
        Record.objects.filter(space=space)
        .select_related("space", "owner_user", "owner_team")
        .order_by("kind", "number")
    )
    if not include_archived:
        records = [r for r in records if r.archived_at is None]
    ids = {r.pk for r in records}
    links: dict[int, dict[str, list[str]]] = {}
    notes: dict[int, dict[str, str]] = {}
    for source_id, link_type, target_key, target_id, note in (
        Link.objects.filter(source_id__in=ids)
        .order_by("type", "target__kind", "target__number")
        .values_list("source_id", "type", "target__key", "target_id", "note")
    ):
        if target_id in ids:
            links.setdefault(source_id, {}).setdefault(link_type, []).append(target_key)
            if note:
                notes.setdefault(source_id, {})[f"{link_type} {target_key}"] = note
    facts = dict(ImportBaseline.objects.filter(record_id__in=ids).values_list("record_id", "facts"))
    files: list[ExportedFile] = []
    used: set[str] = set()
    index = [f"# {space.name}", "", "| key | title | status |", "|---|---|---|"]
    for record in records:
        path = export_filename(record)
        if path.lower() in used:
            path = f"{record.key}-{slugify(record.title)[:60] or 'record'}.md"
        used.add(path.lower())
        files.append(
            ExportedFile(
                path,
                render_record(
                    record, links.get(record.pk, {}), notes.get(record.pk), facts.get(record.pk)
                ),
            )
        )
        # One table row whatever the title holds (pipes, brackets, newlines).
        title = " ".join(record.title.split()).replace("|", "\\|")
        title = title.replace("[", "\\[").replace("]", "\\]")
        target = path.replace(" ", "%20").replace("(", "%28").replace(")", "%29")
        index.append(f"| {record.key} | [{title}]({target}) | {record.status} |")
    files.append(ExportedFile("index.md", "\n".join(index) + "\n"))
    # A whole space leaving the system is a security event (apps.audit).
    audit_log(
        kind=AuditEvent.Kind.EXPORT,
        actor=actor,
        space=space,
        message=f"Exported {len(records)} records of {space.slug}",
        details={"records": len(records), "include_archived": include_archived},
    )
    return files


# --- background import jobs (web upload and API) ----------------------------------------------


def import_job_create(
    *,
    space: Space,
    actor,
    data: bytes,
    filename: str = "",
    kind: str = Record.Kind.DECISION,
    owner_email: str = "",
    dry_run: bool = False,
    overwrite_edits: bool = False,
):
    """Store an uploaded zip and queue its import (after commit). Checks everything that can be
    checked now, so a bad upload is refused at once instead of failing in the background."""
    _require_edit(actor, space)
    if kind not in Record.Kind.values:
        raise InvalidInput(
            f"Unknown kind {kind!r}; use one of {', '.join(Record.Kind.values)}.",
            details={"kind": ["Invalid."]},
        )
    limit = settings.CONTEXTKB_IMPORT_MAX_ZIP_BYTES
    if not data:
        raise InvalidInput("The upload is empty.", details={"file": ["Empty file."]})
    if len(data) > limit:
        raise InvalidInput(
            f"The zip is larger than {limit:,} bytes.", details={"file": ["Too large."]}
        )
    check_zip(data)
    owner_email = (owner_email or "").strip()
    if owner_email:
        owner, _, problem = _resolve_owner(owner_email, space=space)
        if owner is None:
            raise InvalidInput(f"{problem[:1].upper()}{problem[1:]}.", details={"owner": [problem]})
    job = ImportJob.objects.create(
        space=space,
        created_by=access.user_of(actor),
        token=actor if isinstance(actor, ApiToken) else None,
        filename=(filename or "")[:255],
        archive=data,
        kind=kind,
        owner_email=owner_email,
        dry_run=dry_run,
        overwrite_edits=overwrite_edits,
    )
    transaction.on_commit(lambda: run_import_job.delay(job.pk))
    return job


def import_job_run(*, job) -> None:
    """Run a stored import job to the end, recording progress and the summary on the job."""
    actor = job.token if job.token_id else job.created_by
    owner = User.objects.filter(email__iexact=job.owner_email).first() if job.owner_email else None
    now = timezone.now()
    ImportJob.objects.filter(pk=job.pk).update(
        state=ImportJob.State.RUNNING, started_at=now, phase="reading", error=""
    )
    last_write = [0.0]

    def progress(phase: str, done: int, total: int) -> None:
        # At most a few writes a second: progress is for people watching, not an audit log.
        moment = time.monotonic()
        if done == total or moment - last_write[0] > 0.3:
            last_write[0] = moment
            ImportJob.objects.filter(pk=job.pk).update(phase=phase, done=done, total=total)

    try:
        if actor is None:
            raise Forbidden("The user who started this import no longer exists.")
        files = read_zip(bytes(job.archive or b""))
        summary = import_files(
            space=job.space,
            files=files,
            actor=actor,
            kind=job.kind,
            owner=owner,
            dry_run=job.dry_run,
            overwrite_edits=job.overwrite_edits,
            progress=progress,
        )
    except ServiceError as exc:
        ImportJob.objects.filter(pk=job.pk).update(
            state=ImportJob.State.FAILED,
            error=exc.message,
            finished_at=timezone.now(),
            archive=None,
        )
        return
    ImportJob.objects.filter(pk=job.pk).update(
        state=ImportJob.State.DONE,
        phase="done",
        summary=summary.as_dict(),
        finished_at=timezone.now(),
        archive=None,
    )
