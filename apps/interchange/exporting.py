"""Export: every record of a space as a MADR 4 file with YAML front matter, plus an index.md;
importing that folder into an empty space gives back the same records and links."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any

import yaml
from django.utils.text import slugify

from apps.accounts import access
from apps.accounts.models import Space
from apps.audit.models import AuditEvent
from apps.audit.services import audit_log
from apps.core.errors import NotFound
from apps.interchange import parsing, sources
from apps.interchange.models import ImportBaseline
from apps.interchange.reading import INDEX_NAMES
from apps.records.models import Link, Record


def _owner_value(record: Record) -> str:
    if record.owner_user is not None:
        return record.owner_user.email
    if record.owner_team is not None:
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
    if path and safe_relative(path) and posixpath.basename(path).lower() not in INDEX_NAMES:
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
