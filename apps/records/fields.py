"""One table of a record's editable fields: what each is called at every door, what it holds and
what it may be.

The services (editable fields, material edits, revision snapshots), the revision diff, the web
editor's conflict page and kind switch, the API's PUT defaults and the import's re-import digests
read their field lists from here, so a new field is one row here plus its model field (and a
migration). Names at the doors are public formats (API JSON, exported front matter, stored
revision snapshots): they are recorded here, never renamed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apps.records.models import Record

# What a field holds (how the services check it and how the doors parse it).
TEXT = "text"  # one line (`body` is the one multi-line text)
LIST = "list"  # a list of short strings
DATE = "date"  # an ISO date or nothing
CHOICE = "choice"  # one of the model's choices, or blank
OWNER = "owner"  # a User or a Team (two model fields, one owner)


@dataclass(frozen=True)
class FieldSpec:
    """One editable record field."""

    name: str  # model, service, API and revision-snapshot name
    label: str  # as people read it: the editor, the history, the conflict page
    kind: str
    empty: Any  # the value a PUT gives a field it leaves out
    max_length: int | None = None  # characters (of each item, for lists)
    max_items: int | None = None  # lists only
    # Changing it is a "material" edit: dependents become suspect, its own reasons resolve.
    material: bool = False
    decisions_only: bool = False  # the editor shows it for decisions only
    form_name: str = ""  # the web form's field ("owner" for both owner fields); default `name`
    diff_name: str = ""  # the snapshot key the history diffs ("owner_label"); default `name`
    export_key: str | None = None  # exported front matter key (MADR 4 name where there is one)
    import_aliases: tuple[str, ...] = ()  # other front-matter keys read on import
    separator: str = ""  # lists: how the web editor writes them in one text box

    @property
    def form(self) -> str:
        return self.form_name or self.name

    @property
    def diff(self) -> str:
        return self.diff_name or self.name


# In the order people read them (the editor, the conflict page, the history): the body last.
FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("title", "Title", TEXT, "", max_length=200, material=True, export_key="title"),
    FieldSpec("summary", "Summary", TEXT, "", max_length=300, material=True, export_key="summary"),
    FieldSpec("status", "Status", CHOICE, Record.Status.DRAFT, material=True, export_key="status"),
    FieldSpec(
        "owner_user",
        "Owner",
        OWNER,
        None,
        form_name="owner",
        diff_name="owner_label",
        export_key="owner",
    ),
    FieldSpec(
        "owner_team",
        "Owner",
        OWNER,
        None,
        form_name="owner",
        diff_name="owner_label",
        export_key="owner",
    ),
    FieldSpec(
        "tags", "Tags", LIST, [], max_length=50, max_items=30, export_key="tags", separator=", "
    ),
    FieldSpec(
        "anchors",
        "Anchors",
        LIST,
        [],
        max_length=300,
        max_items=50,
        material=True,
        export_key="anchors",
        separator="\n",
    ),
    FieldSpec(
        "reversibility",
        "Reversibility",
        CHOICE,
        "",
        material=True,
        decisions_only=True,
        export_key="reversibility",
    ),
    FieldSpec(
        "impact", "Impact", CHOICE, "", material=True, decisions_only=True, export_key="impact"
    ),
    FieldSpec("decided_on", "Decided on", DATE, None, decisions_only=True, export_key="date"),
    FieldSpec(
        "deciders",
        "Deciders",
        TEXT,
        "",
        max_length=500,
        decisions_only=True,
        export_key="decision-makers",
        import_aliases=("deciders",),
    ),
    FieldSpec("valid_until", "Valid until", DATE, None, material=True, export_key="valid_until"),
    FieldSpec("body", "Body", TEXT, "", max_length=200_000, material=True),
)

BY_NAME: dict[str, FieldSpec] = {f.name: f for f in FIELDS}

# Fields a person edits (the services accept changes to these and no others).
EDITABLE_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS)
MATERIAL_FIELDS: frozenset[str] = frozenset(f.name for f in FIELDS if f.material)
DECISION_ONLY_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.decisions_only)
TEXT_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.kind == TEXT)
DATE_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS if f.kind == DATE)


def form_fields() -> list[tuple[str, str]]:
    """(form field, label) of each editable field, once per form field, in reading order."""
    seen: dict[str, str] = {}
    for f in FIELDS:
        seen.setdefault(f.form, f.label)
    return list(seen.items())


def diff_labels() -> dict[str, str]:
    """Snapshot key → label, for the history's diff headings."""
    return {f.diff: f.label for f in FIELDS}


def put_defaults() -> dict[str, Any]:
    """What a PUT gives every editable field it leaves out (title is required; status keeps
    its current value, as before this table)."""
    return {
        f.name: (list(f.empty) if isinstance(f.empty, list) else f.empty)
        for f in FIELDS
        if f.name not in ("title", "status")
    }


def snapshot_values(record: Record) -> dict[str, Any]:
    """The editable fields of a revision snapshot, in their stored JSON form (owners as ids,
    dates as ISO text). Stored snapshots use these keys: never rename them."""
    out: dict[str, Any] = {}
    for f in FIELDS:
        value = getattr(record, f"{f.name}_id" if f.kind == OWNER else f.name)
        if f.kind == LIST:
            value = list(value)
        elif f.kind == DATE:
            value = value.isoformat() if value else None
        out[f.name] = value
    return out
