"""Re-imports, three-way and field by field: a file's change is written only where the app did
not change the same field meanwhile (see the comment below)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

from django.utils import timezone

from apps.interchange.models import ImportBaseline
from apps.interchange.reading import ImportDoc
from apps.records import owners
from apps.records.fields import FIELDS, LIST, OWNER
from apps.records.models import Record

# After each import the record's file-controlled fields are remembered (a digest each). The next
# import writes a field only when the file changed it since; when the app changed the same field
# to something else meanwhile, nothing of that file is written and the summary says so. So
# re-importing an unchanged folder never undoes an edit, a verification or a status set in the app.


def tracked(record: Record) -> dict[str, Any]:
    owner = owners.digest_value(user_id=record.owner_user_id, team_id=record.owner_team_id)
    # The editable fields (apps.records.fields) under their model names, the owner as one
    # value; then what a file also decides. Stored digests use these names and values.
    values: dict[str, Any] = {
        f.name: list(getattr(record, f.name)) if f.kind == LIST else getattr(record, f.name)
        for f in FIELDS
        if f.kind != OWNER
    }
    return {
        **values,
        "owner": owner,
        "next_review_at": record.next_review_at,
        "last_verified_at": record.last_verified_at,
        "archived": record.archived_at is not None,
    }


def tracked_name(field_name: str) -> str:
    return "owner" if field_name in ("owner_user", "owner_team") else field_name


def digest(value: Any) -> str:
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC).isoformat()
    text = json.dumps(value, default=str, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Clash(Exception):
    """Changed in the app and in the file since the last import: the file is not written."""

    def __init__(self, fields: list[str]):
        self.fields = fields
        super().__init__(
            f"changed in contextkb since the last import, and in the file too ({', '.join(fields)})"
            ": not overwritten. Bring the two together (in the file or in contextkb), or import "
            "again with overwrite-edits"
        )


def file_changed(doc: ImportDoc, name: str, value: Any) -> bool:
    """Whether the file asks for something other than what the last import left."""
    changed = doc.baseline is None or digest(value) != doc.baseline.get(name)
    if changed:
        doc.from_file.add(name)
    return changed


def merge_changes(doc: ImportDoc, existing: Record, changes: dict[str, Any]) -> dict[str, Any]:
    """The changes a re-import may write: only fields the file changed; raises Clash when the
    app changed one of those too (to something else)."""
    if doc.baseline is None:
        return changes
    current = tracked(existing)
    wanted = {tracked_name(k): v for k, v in changes.items() if k != "owner_team"}
    if "owner_user" in changes or "owner_team" in changes:
        user, team = changes.get("owner_user"), changes.get("owner_team")
        wanted["owner"] = owners.digest_value(
            user_id=user.pk if user else None, team_id=team.pk if team else None
        )
    from_file = {n for n, v in wanted.items() if file_changed(doc, n, v)}
    clash = sorted(
        n
        for n in from_file
        if digest(current[n]) != doc.baseline.get(n) and digest(current[n]) != digest(wanted[n])
    )
    if clash:
        raise Clash(clash)
    return {k: v for k, v in changes.items() if tracked_name(k) in from_file}


def remember_baselines(docs: list[ImportDoc]) -> None:
    """For each field: what this import wrote, or, where the file did not change it, what the
    file said before (never an edit made in the app, which would then look like the file's)."""
    by_pk = {d.record.pk: d for d in docs if d.record is not None and not d.clash}
    now = timezone.now()
    rows = []
    for record in Record.objects.filter(pk__in=list(by_pk)):
        doc = by_pk[record.pk]
        fields = {n: digest(v) for n, v in tracked(record).items()}
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
            digest(value) == baselines[record.pk].get(name)
            for name, value in tracked(record).items()
        )
    }


# --- export -----------------------------------------------------------------------------------
