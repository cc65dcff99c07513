"""Markdown import and export of a space's records.

`import_files` turns a folder's (or zip's) ADRs into records and their typed links, through the
record services only. Every file is written in its own savepoint: a bad file is reported and
skipped, never half-imported, and never stops the others. Re-importing the same folder updates the
records it created (matched by source path, or by the `key` in contextkb's own front matter).

`export_space` writes the opposite: one MADR-style file per record with YAML front matter, plus an
index.md; importing that folder into an empty space gives back the same records and links."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.db import DatabaseError, transaction
from django.utils import timezone

from apps.accounts import access
from apps.accounts.models import Membership, Space, User
from apps.core.errors import Forbidden, InvalidInput, NotFound, ServiceError
from apps.interchange import linking, merge, parsing
from apps.interchange.linking import Progress
from apps.interchange.models import ImportBaseline, SourceId
from apps.interchange.reading import (
    ImportDoc,
    as_list,
    origin_of,
    read_files,
    resolve_owner,
    wanted_status,
)
from apps.interchange.sources import SourceFile
from apps.interchange.summary import ImportSummary
from apps.records import policy
from apps.records import services as record_services
from apps.records.models import Record

log = logging.getLogger(__name__)


def require_edit(actor, space: Space) -> None:
    if not access.can_view(actor, space):
        raise NotFound(f"Space {space.slug!r} not found.")
    if not access.can_edit(actor, space):
        raise Forbidden(f"You need to be an editor of {space.name} to import records.")


def _fields_for(
    doc: ImportDoc, *, space: Space, owner: User | None, summary: ImportSummary
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
        fields["tags"] = [t.lower() for t in as_list(fm.get("tags"))]
        fields["anchors"] = as_list(fm.get("anchors"))
        fields["reversibility"] = parsing.as_text(fm.get("reversibility"))
        fields["impact"] = parsing.as_text(fm.get("impact"))
        valid_until, problem = parsing.parse_date(fm.get("valid_until"))
        if problem:
            summary.problem(adr.path, f"valid_until: {problem}")
        fields["valid_until"] = valid_until
        if "owner" in fm:
            user, team, problem = resolve_owner(fm.get("owner"), space=space)
            if problem:
                summary.problem(adr.path, f"{problem}; imported as owned by the importer's choice")
            fields["owner_user"] = user or (owner if team is None else None)
            fields["owner_team"] = team
        else:
            fields["owner_user"] = owner
    else:
        fields["owner_user"] = owner
    return fields


def _write_record(
    doc: ImportDoc,
    *,
    space: Space,
    actor,
    owner: User | None,
    existing: Record | None,
    number: int | None,
    summary: ImportSummary,
) -> None:
    fields = _fields_for(doc, space=space, owner=owner, summary=summary)
    if existing is None:
        _create_from_file(doc, fields, space=space, actor=actor, number=number, summary=summary)
    else:
        _update_from_file(doc, fields, existing=existing, actor=actor, owner=owner, summary=summary)


def _create_from_file(
    doc: ImportDoc, fields: dict[str, Any], *, space: Space, actor, number, summary
) -> None:
    adr = doc.adr
    status = wanted_status(doc)
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


def _update_from_file(
    doc: ImportDoc, fields: dict[str, Any], *, existing: Record, actor, owner, summary
) -> None:
    adr = doc.adr
    changes = _changes_from_file(doc, fields, existing=existing, owner=owner)
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


def _changes_from_file(
    doc: ImportDoc, fields: dict[str, Any], *, existing: Record, owner
) -> dict[str, Any]:
    """What a re-import may change on `existing` (raises merge.Clash, see apps.interchange.merge)."""
    adr = doc.adr
    status = wanted_status(doc)
    changes = dict(fields)
    if not adr.exported or "owner" not in adr.front_matter:
        # Keep an owner someone set in the app; only fill in a missing one.
        changes.pop("owner_user", None)
        changes.pop("owner_team", None)
        if existing.owner_user_id is None and existing.owner_team_id is None and owner:
            changes["owner_user"] = owner
    # Tags added in the app survive a re-import.
    changes["tags"] = list(existing.tags) + [t for t in fields["tags"] if t not in existing.tags]
    # A superseded status belongs to the supersedes link; a file cannot set or undo it.
    if existing.status != Record.Status.SUPERSEDED and status != Record.Status.SUPERSEDED:
        changes["status"] = status
    changes = merge.merge_changes(doc, existing, changes)
    if any(t in existing.tags for t in adr.status.tags):
        # The status-… tags earlier imports wrote for this file's status are import
        # metadata now; they go whatever else the merge keeps.
        changes["tags"] = [t for t in existing.tags if t not in adr.status.tags]
    return changes


def _start_review_clock(record: Record, doc: ImportDoc) -> None:
    """Start a new record's review clock at its own date, not at the import: an ADR from 2018
    that nobody has verified here is due for a first verification at once."""
    origin, _ = origin_of(doc)
    if origin is None or origin >= record.created_at:
        return
    record.created_at = origin
    record.next_review_at = policy.next_review_at(record, now=origin)
    doc.from_file.add("next_review_at")  # the file's date set it: not an edit made in the app
    Record.objects.filter(pk=record.pk).update(
        created_at=record.created_at, next_review_at=record.next_review_at
    )
    record_services.refresh_freshness(record)


def _finish_exported(doc: ImportDoc, *, actor, summary: ImportSummary) -> None:
    """What contextkb's own export says beyond the fields, applied once the links exist: the
    status (a supersedes link marks its target superseded, but a partly superseded record keeps
    its own), then the review dates (a status edit by the owner would move them), then the
    archived flag (an archived record cannot gain a supersedes link, so it is archived last)."""
    record = Record.objects.get(pk=doc.written.pk)
    status = wanted_status(doc)
    if (
        status != Record.Status.SUPERSEDED
        and record.status != status
        and merge.file_changed(doc, "status", status)
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


def _apply_exported_extras(record: Record, doc: ImportDoc, *, actor, summary) -> None:
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
        if getattr(record, name) != when and merge.file_changed(doc, name, when):
            updates[name] = when
    if updates:
        Record.objects.filter(pk=record.pk).update(**updates)
        for name, value in updates.items():
            setattr(record, name, value)
        record_services.refresh_freshness(record)
    archived = fm.get("archived") is True
    if archived and record.archived_at is None and merge.file_changed(doc, "archived", archived):
        record_services.record_archive(record=record, actor=actor)


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
    require_edit(actor, space)
    if kind not in Record.Kind.values:
        raise InvalidInput(f"Unknown kind {kind!r}; use one of {', '.join(Record.Kind.values)}.")
    if owner is not None and not Membership.objects.filter(user=owner, space=space).exists():
        raise InvalidInput(f"{owner.email} is not a member of {space.name}, so cannot own records.")
    summary = ImportSummary(dry_run=dry_run, space_slug=space.slug, files_seen=len(files))
    run = _Import(space, actor, owner, overwrite_edits, summary, progress)
    if dry_run:
        with transaction.atomic():
            run.run(files, kind=kind)
            transaction.set_rollback(True)
    else:
        run.run(files, kind=kind)
    return summary


@dataclass
class _Import:
    """One import of a set of files into a space: read, match, write records, then links."""

    space: Space
    actor: Any
    owner: User | None
    overwrite_edits: bool
    summary: ImportSummary
    progress: Progress | None

    def run(self, files: list[SourceFile], *, kind: str) -> None:
        docs, skipped_paths = read_files(files, kind=kind, summary=self.summary)
        self._match(docs)
        self._claim_numbers(docs)
        for done, doc in enumerate(docs, 1):
            self._write(doc)
            if self.progress:
                self.progress("records", done, len(docs))
        imported = [d for d in docs if d.record is not None]
        wanted = linking.collect_links(imported, skipped_paths=skipped_paths, summary=self.summary)
        linking.write_links(wanted, actor=self.actor, summary=self.summary, progress=self.progress)
        self._finish(imported)
        merge.remember_baselines(imported)

    def _source_ids(self, docs: list[ImportDoc]) -> None:
        """Front-matter ids (`id: adr-12`): a renamed file is still the same record. An id that
        several files share matches none of them."""
        by_id: dict[str, list[ImportDoc]] = {}
        for d in docs:
            value = "" if d.adr.exported else parsing.as_text(d.adr.front_matter.get("id"))[:200]
            if value:
                by_id.setdefault(value, []).append(d)
        for value, sharing in by_id.items():
            if len(sharing) == 1:
                sharing[0].source_id = value
                continue
            for d in sharing:
                self.summary.problem(
                    d.adr.path,
                    f"front-matter id {value!r} is used by {len(sharing)} files; "
                    "matched by its path only",
                )

    def _match(self, docs: list[ImportDoc]) -> None:
        """Find the record each file updates (by path, by exported key within the space it was
        exported from, or by front-matter id when its old file is not in this import)."""
        space = self.space
        self._source_ids(docs)
        by_path = {
            r.source_path: r for r in Record.objects.filter(space=space).exclude(source_path="")
        }
        by_id = {
            s.value: s.record
            for s in SourceId.objects.filter(
                space=space, value__in={d.source_id for d in docs if d.source_id}
            ).select_related("record")
        }
        keys = [str(d.adr.front_matter.get("key")) for d in docs if d.adr.exported]
        by_key = {r.key: r for r in Record.objects.filter(space=space, key__in=keys)}
        paths_in_import = {d.adr.path for d in docs}
        baselines = (
            {}
            if self.overwrite_edits
            else dict(
                ImportBaseline.objects.filter(record__space=space).values_list(
                    "record_id", "fields"
                )
            )
        )
        for doc in docs:
            adr = doc.adr
            doc.existing = by_path.get(adr.path)
            if (
                doc.existing is None
                and adr.exported
                and adr.front_matter.get("space") == space.slug
            ):
                # By key only within the space the file was exported from: another space's
                # DEC-10 is a different decision and must not be overwritten.
                doc.existing = by_key.get(parsing.as_text(adr.front_matter.get("key")))
            candidate = by_id.get(doc.source_id) if doc.existing is None else None
            # Not when its own file is in this import too (the id was copied, not moved).
            if candidate is not None and candidate.source_path not in paths_in_import:
                doc.existing, doc.renamed_from = candidate, candidate.source_path
            if doc.existing is not None:
                doc.baseline = baselines.get(doc.existing.pk)

    def _claim_numbers(self, docs: list[ImportDoc]) -> None:
        """Each new file keeps the number in its name when that number is free: the first file
        (by path) to name a number claims it, and every claim is written before any file that
        needs a fresh number, so a clash (ADR/ADR002 and decision-record/DR002) never shifts the
        rest. Sorts `docs` into writing order."""
        claimed: set[tuple[str, int | None]] = set(
            Record.objects.filter(space=self.space).values_list("kind", "number")
        )
        for d in sorted(docs, key=lambda d: (d.adr.number or 0, d.adr.path)):
            wanted = (d.kind, d.adr.number)
            if d.existing is None and d.adr.number and wanted not in claimed:
                d.number = d.adr.number
                claimed.add(wanted)
        docs.sort(key=lambda d: (d.number is None, d.adr.number or 0, d.adr.path))

    def _write(self, doc: ImportDoc) -> None:
        """One file, in its own savepoint: written whole or reported and skipped."""
        adr, summary = doc.adr, self.summary
        if adr.status.unknown and not adr.exported:
            summary.unknown_statuses.append({"path": adr.path, "status": adr.status.unknown})
        try:
            with transaction.atomic():
                _write_record(
                    doc,
                    space=self.space,
                    actor=self.actor,
                    owner=self.owner,
                    existing=doc.existing,
                    number=doc.number,
                    summary=summary,
                )
                if doc.source_id:
                    self._remember_id(doc)
        except merge.Clash as exc:
            # Nothing of this file is written; links to and from it still count.
            doc.record, doc.clash = doc.existing, True
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

    def _remember_id(self, doc: ImportDoc) -> None:
        """Bind a front-matter id to its record (and move the record to the file's new path)."""
        SourceId.objects.update_or_create(
            space=self.space, value=doc.source_id, defaults={"record": doc.written}
        )
        if doc.renamed_from and doc.renamed_from != doc.adr.path:
            Record.objects.filter(pk=doc.written.pk).update(source_path=doc.adr.path)
            doc.written.source_path = doc.adr.path
            self.summary.problem(
                doc.adr.path,
                f"{doc.written.key} found by its front-matter id {doc.source_id!r}: "
                f"renamed from {doc.renamed_from}",
            )

    def _finish(self, imported: list[ImportDoc]) -> None:
        """Once the links exist: what contextkb's own export says beyond the fields, and a
        report of every file that says superseded but whose successor was not found."""
        for doc in imported:
            if not doc.adr.exported or doc.clash:
                continue
            try:
                with transaction.atomic():
                    _finish_exported(doc, actor=self.actor, summary=self.summary)
            except ServiceError as exc:
                self.summary.problem(
                    doc.adr.path, f"status, review dates or archived flag: {exc.message}"
                )
        for doc in imported:
            if wanted_status(doc) != Record.Status.SUPERSEDED:
                continue
            status = (
                Record.objects.filter(pk=doc.written.pk).values_list("status", flat=True).first()
            )
            if status != Record.Status.SUPERSEDED:
                self.summary.problem(
                    doc.adr.path,
                    f"says {(doc.adr.status_text or 'superseded')[:80]!r} but no successor was "
                    "found; imported as deprecated",
                )
