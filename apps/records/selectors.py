"""Reads of records that take more than one query."""

from __future__ import annotations

import difflib
from collections import defaultdict

from django.db.models import Prefetch, QuerySet

from apps.records.models import Link, Record, Revision, SuspectReason


def record_list_visible(*, principal, include_archived: bool = False) -> QuerySet[Record]:
    """Records the principal may see, with what list views show, in a constant number of queries."""
    qs = (
        Record.objects.visible_to(principal)
        .select_related("space", "owner_user", "owner_team")
        .with_freshness()
    )
    if not include_archived:
        qs = qs.active()
    return qs


def record_get_by_key(*, principal, space_slug: str, key: str) -> Record | None:
    return (
        record_list_visible(principal=principal, include_archived=True)
        .filter(space__slug=space_slug, key__iexact=key)
        .first()
    )


def record_detail(*, principal, pk: int) -> Record | None:
    """One record with its links (both ways), open reasons and recent verifications."""
    return (
        record_list_visible(principal=principal, include_archived=True)
        .prefetch_related(
            Prefetch("outgoing_links", queryset=Link.objects.select_related("target")),
            Prefetch("incoming_links", queryset=Link.objects.select_related("source")),
            Prefetch(
                "suspect_reasons",
                queryset=SuspectReason.objects.filter(resolved_at__isnull=True).select_related(
                    "cause_record"
                ),
                to_attr="open_reasons",
            ),
        )
        .filter(pk=pk)
        .first()
    )


def links_grouped(record: Record) -> dict[str, list[tuple[str, Record, Link]]]:
    """{"outgoing": [(label, other, link)], "incoming": [...]}, grouped by type label."""
    groups: dict[str, list] = defaultdict(list)
    for link in record.outgoing_links.all():
        groups["outgoing"].append((link.get_type_display(), link.target, link))
    for link in record.incoming_links.all():
        groups["incoming"].append((Link.INVERSE_LABELS[link.type], link.source, link))
    return dict(groups)


def successor_of(record: Record) -> Record | None:
    """The newest record that supersedes this one, if any."""
    link = (
        Link.objects.filter(target=record, type=Link.Type.SUPERSEDES)
        .select_related("source")
        .order_by("-created_at")
        .first()
    )
    return link.source if link else None


DIFF_FIELDS = (
    "title",
    "summary",
    "status",
    "owner_label",
    "tags",
    "anchors",
    "reversibility",
    "impact",
    "decided_on",
    "deciders",
    "valid_until",
    "archived",
    "links",
    "body",
)


def _as_lines(name: str, value) -> list[str]:
    if isinstance(value, list):
        return [
            str(v if not isinstance(v, dict) else f"{v.get('type')} {v.get('target')}")
            for v in value
        ]
    if name == "body":
        return (value or "").splitlines()
    return [] if value in (None, "") else [str(value)]


def revision_diff(old: Revision, new: Revision) -> list[dict]:
    """Per-field unified diffs between two revisions of the same record (only changed fields)."""
    out = []
    for name in DIFF_FIELDS:
        a = _as_lines(name, old.snapshot.get(name))
        b = _as_lines(name, new.snapshot.get(name))
        if a == b:
            continue
        out.append(
            {
                "field": name,
                "old": a,
                "new": b,
                "unified": list(
                    difflib.unified_diff(a, b, f"r{old.number}", f"r{new.number}", lineterm="", n=3)
                ),
            }
        )
    return out
