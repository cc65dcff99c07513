"""Change assessment: which records govern a change (a pull request's changed paths, title and
description), and how deeply it should be reviewed.

One service for every door: `POST /api/v1/changes/assess/` (apps.api.changes), the MCP tool
`assess_change` and, through the API, `contextkb check` (clients/python).

Review level:
- `deep`: the change touches a guardrail's anchor, an accepted high-impact one-way-door decision,
  or a record that is stale or suspect;
- `normal`: other records govern it (anchored to its paths or found by its description);
- `light`: nothing in the knowledge base governs it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Prefetch
from django.utils import timezone

from apps.core.errors import InvalidInput
from apps.records import anchors as anchor_rules
from apps.records.models import Record, SuspectReason
from apps.records.selectors import present_reasons

MAX_PATHS = 5000
MAX_PATH_CHARS = 1000
MAX_TEXT_CHARS = 20000
DESCRIBED_LIMIT = 5
# Records that no longer govern anything.
_NOT_GOVERNING = (Record.Status.REJECTED, Record.Status.SUPERSEDED, Record.Status.DEPRECATED)
_KIND_ORDER: dict[str, int] = {
    Record.Kind.GUARDRAIL: 0,
    Record.Kind.CONSTRAINT: 1,
    Record.Kind.DECISION: 2,
    Record.Kind.INTENT: 3,
}


def _is_one_way_high(record: Record) -> bool:
    return (
        record.kind == Record.Kind.DECISION
        and record.status == Record.Status.ACCEPTED
        and record.impact == Record.Impact.HIGH
        and record.reversibility == Record.Reversibility.ONE_WAY
    )


def _deep_reasons(record: Record, how: str) -> list[str]:
    where = "its anchor" if how == "anchor" else "the description"
    reasons = []
    if record.kind == Record.Kind.GUARDRAIL and how == "anchor":
        reasons.append(f"touches guardrail {record.key} ({record.title})")
    if _is_one_way_high(record):
        reasons.append(
            f"touches accepted high-impact one-way-door decision {record.key} ({record.title})"
            f" via {where}"
        )
    if record.freshness in (Record.Freshness.STALE, Record.Freshness.SUSPECT):
        reasons.append(f"{record.key} ({record.title}) is {record.freshness}")
    return reasons


def _clean_paths(paths) -> list[str]:
    if not isinstance(paths, list | tuple):
        raise InvalidInput("`paths` must be a list.", details={"paths": ["Must be a list."]})
    if len(paths) > MAX_PATHS:
        raise InvalidInput(
            f"At most {MAX_PATHS} changed paths.", details={"paths": [f"At most {MAX_PATHS}."]}
        )
    out: list[str] = []
    for p in paths:
        if not isinstance(p, str) or len(p) > MAX_PATH_CHARS or "\x00" in p:
            raise InvalidInput(
                "Each changed path must be text of at most 1000 characters, without NUL.",
                details={"paths": [f"Not a path: {str(p)[:60]!r}."]},
            )
        path = anchor_rules.normalise_path(p)
        if path and path not in out:
            out.append(path)
    return out


def assess_change(
    *,
    principal,
    paths,
    spaces: list[str] | tuple = (),
    title: str = "",
    description: str = "",
    lines_changed: int | None = None,
) -> dict:
    """The records governing a change and its review level (see the module docstring).

    `principal` is a user or an API token; only the records it may see are considered.
    Raises InvalidInput for bad paths or an unknown/hidden space.
    """
    from apps.retrieval.bundle import resolve_spaces

    paths = _clean_paths(paths)
    _check_text(title=title, description=description)
    space_ids = list(resolve_spaces(principal, list(spaces)))
    found = _governing(space_ids, paths, title=title, description=description)
    present_reasons(principal, [reason for r, _ in found for reason in r.open_reasons])  # type: ignore[attr-defined]  # Prefetch(to_attr=...)

    now = timezone.now()
    items: list[dict[str, Any]] = []
    reasons: list[str] = []
    covered: set[str] = set()
    for record, how in found:
        matched = [p for p in paths if anchor_rules.any_match(record.anchors, [p])]
        covered.update(matched)
        deep = _deep_reasons(record, how)
        reasons += [r for r in deep if r not in reasons]
        items.append(_item(record, how, matched=matched, deep=bool(deep), now=now))
    items.sort(key=lambda i: (not i["deep"], i["found_by"] != "anchor", _KIND_ORDER[i["kind"]]))
    level, reasons = _level(items, reasons)
    owners: dict[str, list[str]] = {}
    for item in items:
        owners.setdefault(item["owner"]["name"], []).append(item["key"])
    return {
        "level": level,
        "reasons": reasons,
        "records": items,
        "verify_first": [i["key"] for i in items if i["deep"]],
        "ask": [{"owner": name, "records": keys} for name, keys in owners.items()],
        "paths": paths,
        "unanchored_paths": [p for p in paths if p not in covered],
        "lines_changed": lines_changed,
    }


def _check_text(*, title: object, description: object) -> None:
    for name, value in (("title", title), ("description", description)):
        if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS or "\x00" in value:
            raise InvalidInput(
                f"`{name}` must be text of at most {MAX_TEXT_CHARS} characters.",
                details={name: ["Invalid text."]},
            )


def _governing(
    space_ids: list[int], paths: list[str], *, title: str, description: str
) -> list[tuple[Record, str]]:
    """(record, "anchor" | "description"): the governing records anchored to the paths, then
    at most DESCRIBED_LIMIT more that the title and description find."""
    from apps.retrieval.search import hybrid_search

    base = (
        Record.objects.filter(space_id__in=space_ids)
        .active()
        .exclude(status__in=_NOT_GOVERNING)
        .select_related("space", "owner_user", "owner_team")
        .prefetch_related(
            Prefetch(
                "suspect_reasons",
                queryset=SuspectReason.objects.filter(resolved_at__isnull=True),
                to_attr="open_reasons",
            )
        )
    )
    anchored = list(base.anchored_to(paths)) if paths and space_ids else []
    found: list[tuple[Record, str]] = [(r, "anchor") for r in anchored]
    query = " ".join(t.strip() for t in (title, description) if t.strip())
    if query and space_ids:
        hits = hybrid_search(space_ids=space_ids, query=query[:2000], limit=20).hits
        seen = {r.pk for r in anchored}
        ids = [h.record_id for h in hits if h.record_id not in seen][: DESCRIBED_LIMIT * 2]
        by_id = {r.pk: r for r in base.filter(pk__in=ids)}
        described = [by_id[i] for i in ids if i in by_id][:DESCRIBED_LIMIT]
        found += [(r, "description") for r in described]
    return found


def _item(
    record: Record, how: str, *, matched: list[str], deep: bool, now: dt.datetime
) -> dict[str, Any]:
    """One governing record as the assessment lists it."""
    from apps.retrieval.bundle import freshness_reasons, owner_of, record_url

    return {
        "key": record.key,
        "space": record.space.slug,
        "kind": record.kind,
        "title": record.title,
        "summary": record.summary,
        "status": record.status,
        "freshness": record.freshness,
        "freshness_reasons": freshness_reasons(record, now),
        "impact": record.impact or None,
        "reversibility": record.reversibility or None,
        "owner": owner_of(record) or {"type": None, "name": "Unowned", "email": None},
        "url": record_url(record),
        "found_by": how,
        "anchors": list(record.anchors),
        "matched_paths": matched,
        "deep": deep,
    }


def _level(items: list[dict[str, Any]], deep_reasons: list[str]) -> tuple[str, list[str]]:
    """The review level and the reasons that explain it."""
    if deep_reasons:
        return "deep", deep_reasons
    if items:
        return "normal", [
            f"{len(items)} record(s) govern this change; none is a guardrail or stale"
        ]
    return "light", ["no record in the knowledge base governs these paths or this description"]


def assessment_markdown(result: dict) -> str:
    """The assessment as markdown (the MCP tool's answer; the CLI renders its own comment)."""
    lines = [f"**Review level: {result['level']}**", ""]
    lines += [f"- {reason}" for reason in result["reasons"]]
    if result["records"]:
        lines += ["", "Governing records:"]
        for item in result["records"]:
            how = (
                "anchored to " + ", ".join(item["matched_paths"])
                if item["found_by"] == "anchor"
                else "found by the description"
            )
            extra = ", ".join(
                x
                for x in (item["impact"] and f"impact {item['impact']}", item["reversibility"])
                if x
            )
            lines.append(
                f"- {item['key']} ({item['kind']}, {item['status']}, {item['freshness']}"
                f"{', ' + extra if extra else ''}): {item['title']} — owner "
                f"{item['owner']['name']}; {how}. {item['url']}"
            )
    if result["unanchored_paths"]:
        lines += ["", "No record covers: " + ", ".join(result["unanchored_paths"][:50])]
    return "\n".join(lines) + "\n"
