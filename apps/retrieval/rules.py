"""Rule files for AI agents, rendered from records and their anchors.

One renderer for every door that writes rules for agents:
- `GET /api/v1/rules/` (apps.api.rules), which `contextkb rules` writes into a checkout:
  nested `AGENTS.md` in the anchored directories, GitHub Copilot's
  `.github/instructions/<name>.instructions.md` (`applyTo:` globs) and Cursor's
  `.cursor/rules/<name>.mdc` (`globs:`);
- `GET /api/v1/context/agents.md` (apps.retrieval.agents_md), one file for a space.

Output is deterministic: files and entries in a stable order, and no "generated at" time. Each
entry carries its record's key, an absolute link, version, state and last-verified date (its
freshness stamp), so a file changes exactly when a record in it does (or its freshness does).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.db.models import Prefetch, Q
from django.utils import timezone

from apps.records.models import Record, RecordQuerySet, SuspectReason
from apps.records.selectors import present_reasons
from apps.retrieval.bundle import escape_markdown, freshness_reasons, record_url, resolve_spaces

# Marks a file as written by contextkb: `contextkb rules` only updates or removes files that
# carry it, never a hand-written one.
MARKER = "<!-- contextkb: generated file. Edit the records in contextkb, not this file. -->"
MAX_RULE_RECORDS = 1000
KIND_ORDER: dict[str, int] = {
    Record.Kind.GUARDRAIL: 0,
    Record.Kind.CONSTRAINT: 1,
    Record.Kind.DECISION: 2,
    Record.Kind.INTENT: 3,
}
SECTIONS = (
    (Record.Kind.GUARDRAIL, "Guardrails", "Rules for AI agents and contributors working here."),
    (Record.Kind.CONSTRAINT, "Constraints", "Things that must hold; do not break them."),
    (
        Record.Kind.DECISION,
        "Key decisions",
        "Decided; follow them unless a newer record says otherwise.",
    ),
    (Record.Kind.INTENT, "Product intent", "Why this code exists; keep changes in line with it."),
)
_WILDCARD = re.compile(r"[*?]")


# --- one record ---------------------------------------------------------------------------------


def freshness_stamp(record: Record) -> str:
    """`v3 · accepted · fresh · last verified 2026-11-20`: what an agent needs to judge how far
    to trust the entry, from the record's own state (never the time of rendering)."""
    verified = (
        f"last verified {record.last_verified_at:%Y-%m-%d}"
        if record.last_verified_at
        else "never verified"
    )
    return f"v{record.version} · {record.status} · {record.freshness} · {verified}"


def render_entry(record: Record, *, now, level: int = 3, space_label: bool = False) -> list[str]:
    """One record as markdown lines: linked key and title, freshness stamp, anchors, warnings,
    summary, body (not for decisions, whose summary is the rule) and owner."""
    flags = []
    if record.status != Record.Status.ACCEPTED:
        flags.append(record.status)
    if record.freshness != Record.Freshness.FRESH:
        flags.append(record.freshness)
    flag = f" _({', '.join(flags)})_" if flags else ""
    where = f" · space {record.space.slug}" if space_label else ""
    lines = [
        f"{'#' * level} [{record.key}]({record_url(record)}): {escape_markdown(record.title)}{flag}",
        "",
        f"Freshness: {freshness_stamp(record)}{where}.",
        "",
    ]
    if record.anchors:
        lines += ["Applies to: " + ", ".join(f"`{a}`" for a in record.anchors), ""]
    if record.freshness in (Record.Freshness.STALE, Record.Freshness.SUSPECT):
        lines += [
            "> May no longer hold: " + " ".join(freshness_reasons(record, now)),
            "",
        ]
    if record.summary:
        lines += [escape_markdown(record.summary), ""]
    if record.kind != Record.Kind.DECISION and record.body.strip():
        lines += [escape_markdown(nest_headings(record.body.strip(), under=level)), ""]
    lines += [f"Owner: {escape_markdown(record.owner_label)}.", ""]
    return lines


def render_sections(records: list[Record], *, now, space_label: bool = False) -> list[str]:
    """The records under `## Guardrails`, `## Constraints`, … (in that order)."""
    lines: list[str] = []
    for kind, heading, blurb in SECTIONS:
        section = [r for r in records if r.kind == kind]
        if not section:
            continue
        lines += [f"## {heading}", "", blurb, ""]
        for record in section:
            lines += render_entry(record, now=now, space_label=space_label)
    return lines


_HEADING = re.compile(r"^(#{1,6})(?=\s)")
_FENCE = re.compile(r"^\s*(```|~~~)")


def nest_headings(text: str, under: int = 3) -> str:
    """Headings inside a record's text moved below the record's own heading (level `under`),
    so a body's "## Why" does not read as a section of the file; fenced code is left alone."""
    lines, fenced = [], False
    for line in text.split("\n"):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced:
            line = _HEADING.sub(lambda m: "#" * min(6, len(m.group(1)) + under), line)
        lines.append(line)
    return "\n".join(lines)


def _text(lines: list[str]) -> str:
    return "\n".join(lines).rstrip("\n") + "\n"


# --- anchors -> places --------------------------------------------------------------------------


def anchor_directory(anchor: str) -> str:
    """The folder an anchor is about, for its nested AGENTS.md: the part before the first
    wildcard (`services/**/clients/*.py` -> `services`, `**/migrations/**` -> the root). An
    anchor without wildcards covers a folder, or a file when its last part has a dot."""
    parts = [p for p in anchor.strip("/").split("/") if p]
    folder: list[str] = []
    for part in parts:
        if _WILDCARD.search(part):
            return "/".join(folder)
        folder.append(part)
    if folder and "." in folder[-1]:
        folder.pop()
    return "/".join(folder)


def anchor_globs(anchors: Iterable[str]) -> list[str]:
    """Anchors as the globs Copilot and Cursor match: an anchor without wildcards also covers
    everything under it, as contextkb's own anchors do (`services/billing` ->
    `services/billing`, `services/billing/**`)."""
    out: list[str] = []
    for anchor in anchors:
        anchor = anchor.strip().rstrip("/") or "**"
        globs = [anchor] if _WILDCARD.search(anchor) else [anchor, f"{anchor}/**"]
        out += [g for g in globs if g not in out]
    return out


# --- selection ------------------------------------------------------------------------------------


def rule_records(*, principal, space_ids: list[int]) -> list[Record]:
    """The records rule files are made of: accepted, not archived, verified by their owner (or a
    space admin; `last_verified_at` is only set by a verification or the owner's own edit), in
    the given spaces, and either anchored to paths or a space-wide guardrail or constraint."""
    rules = Q(kind__in=[Record.Kind.GUARDRAIL, Record.Kind.CONSTRAINT])
    records = list(
        for_entries(
            Record.objects.filter(space_id__in=space_ids)
            .active()
            .filter(status=Record.Status.ACCEPTED, last_verified_at__isnull=False)
            .filter(~Q(anchors=[]) | rules)
        ).order_by("space__slug", "kind", "number")[:MAX_RULE_RECORDS]
    )
    present_open_reasons(principal, records)
    records.sort(key=_order)
    return records


def for_entries(records: RecordQuerySet) -> RecordQuerySet:
    """The records with what `render_entry` reads, in a constant number of queries: space,
    owner, freshness, and the open suspect reasons as `open_reasons` (word them for the reader
    with `present_open_reasons` before rendering)."""
    return (
        records.select_related("space", "owner_user", "owner_team")
        .with_freshness()
        .prefetch_related(
            Prefetch(
                "suspect_reasons",
                queryset=SuspectReason.objects.filter(resolved_at__isnull=True).order_by("pk"),
                to_attr="open_reasons",
            )
        )
    )


def present_open_reasons(principal, records: list[Record]) -> None:
    """The open reasons of `records` (from `for_entries`) worded for this principal: a reason
    naming a record they cannot see does not name it."""
    # `open_reasons` is the prefetch's to_attr, set on each record.
    present_reasons(
        principal, [reason for r in records for reason in getattr(r, "open_reasons", [])]
    )


def _order(record: Record):
    return (KIND_ORDER[record.kind], record.space.slug, record.number)


# --- the files ------------------------------------------------------------------------------------


def _file_name(record: Record) -> str:
    return f"contextkb-{record.space.slug}-{record.key.lower()}"


def _yaml_single(value: str) -> str:
    return "'" + _one_line(value).replace("'", "''") + "'"


def _yaml_double(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _one_line(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip()


def _description(record: Record) -> str:
    # No ": " in it: Cursor's front matter is read unquoted, where it would start a mapping.
    return f"{record.key} — {record.title}"


def _single_record_body(record: Record, *, now, space_label: bool) -> list[str]:
    return [MARKER, "", *render_entry(record, now=now, level=1, space_label=space_label)]


def copilot_instructions(record: Record, *, now, space_label: bool = False) -> str:
    """`.github/instructions/<name>.instructions.md`: front matter with `applyTo` globs (the
    record's anchors; `**` for a space-wide rule), then the entry."""
    apply_to = ",".join(anchor_globs(record.anchors)) if record.anchors else "**"
    lines = [
        "---",
        f"description: {_yaml_single(_description(record))}",
        f"applyTo: {_yaml_double(apply_to)}",
        "---",
        "",
        *_single_record_body(record, now=now, space_label=space_label),
    ]
    return _text(lines)


def cursor_rule(record: Record, *, now, space_label: bool = False) -> str:
    """`.cursor/rules/<name>.mdc`: Cursor's front matter (`globs` as a comma-separated list, no
    quotes; a space-wide rule is `alwaysApply: true`), then the entry."""
    globs = ",".join(anchor_globs(record.anchors)) if record.anchors else ""
    lines = [
        "---",
        f"description: {_one_line(_description(record))}",
        f"globs: {globs}",
        f"alwaysApply: {'false' if record.anchors else 'true'}",
        "---",
        "",
        *_single_record_body(record, now=now, space_label=space_label),
    ]
    return _text(lines)


def nested_agents_md(
    folder: str, records: list[Record], *, now, spaces: list[str], space_label: bool
) -> str:
    where = f"`{folder}/`" if folder else "the repository root"
    lines = [
        f"# AGENTS.md — {folder or 'repository root'}",
        "",
        MARKER,
        "",
        f"The records of contextkb ({', '.join(spaces)}) anchored to {where} and below: follow "
        "them when working here. Each entry links to its record and says how fresh it is; stale "
        "or suspect entries may no longer hold.",
        "",
        *render_sections(records, now=now, space_label=space_label),
    ]
    return _text(lines)


def rule_files(*, principal, spaces: list[str]) -> dict:
    """{"spaces", "marker", "records", "files": [{"path", "content"}]} for `contextkb rules`:
    the named spaces (default: all the principal may see). Raises InvalidInput for an unknown or
    hidden space."""
    visible = resolve_spaces(principal, list(spaces))
    records = rule_records(principal=principal, space_ids=list(visible))
    slugs = sorted({s.slug for s in visible.values()})
    space_label = len(slugs) > 1
    now = timezone.now()
    by_folder: dict[str, list[Record]] = {}
    files: dict[str, str] = {}
    listed = []
    for record in records:
        folders = sorted({anchor_directory(a) for a in record.anchors}) if record.anchors else [""]
        for folder in folders:
            by_folder.setdefault(folder, []).append(record)
        name = _file_name(record)
        own = [
            f".github/instructions/{name}.instructions.md",
            f".cursor/rules/{name}.mdc",
        ]
        files[own[0]] = copilot_instructions(record, now=now, space_label=space_label)
        files[own[1]] = cursor_rule(record, now=now, space_label=space_label)
        agents = [f"{folder}/AGENTS.md" if folder else "AGENTS.md" for folder in folders]
        listed.append(
            {
                "key": record.key,
                "space": record.space.slug,
                "kind": record.kind,
                "title": record.title,
                "version": record.version,
                "freshness": record.freshness,
                # Only verified records get here (last_verified_at__isnull=False): never None.
                "last_verified": record.last_verified_at.date().isoformat(),  # type: ignore[union-attr]
                "url": record_url(record),
                "anchors": list(record.anchors),
                "files": sorted(agents + own),
            }
        )
    for folder, entries in by_folder.items():
        path = f"{folder}/AGENTS.md" if folder else "AGENTS.md"
        files[path] = nested_agents_md(
            folder, entries, now=now, spaces=slugs, space_label=space_label
        )
    return {
        "spaces": slugs,
        "marker": MARKER,
        "records": listed,
        "files": [{"path": p, "content": files[p]} for p in sorted(files)],
    }
