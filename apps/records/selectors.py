"""Reads of records that take more than one query."""

from __future__ import annotations

import difflib
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet

from apps.records.models import Link, Record, Revision, SuspectReason, Verification


def record_list_visible(*, principal, include_archived: bool = False) -> QuerySet[Record]:
    """Records the principal may see, with what list views show, in a constant number of queries."""
    qs = Record.objects.visible_to(principal).select_related("space", "owner_user", "owner_team")
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


@dataclass
class VerificationEntry:
    """One line of a record's verification timeline. A run of owner edits is one line."""

    verification: Verification  # the newest of the run
    revision: int | None  # the revision number it confirmed (the newest, for a run)
    first_revision: int | None = None  # the oldest revision of a run of owner edits
    edits: int = 0  # how many owner edits the line stands for (0: an explicit verification)


def verification_timeline(
    record: Record, *, limit: int = 10
) -> tuple[list[VerificationEntry], bool]:
    """The newest verifications, newest first, named by revision number (as the history is), with
    consecutive owner edits folded into one line; and whether there are more. Two queries."""
    rows = list(record.verifications.select_related("actor")[: limit * 10 + 1])
    truncated = len(rows) > limit * 10
    rows = rows[: limit * 10]
    # A verification confirmed the record's content at `record_version`: the newest revision of
    # that version written by then (link changes add revisions without a new version).
    revisions: dict[int, list[tuple[int, object]]] = defaultdict(list)
    for number, version, created_at in (
        Revision.objects.filter(record=record, version__in={v.record_version for v in rows})
        .order_by("number")
        .values_list("number", "version", "created_at")
    ):
        revisions[version].append((number, created_at))

    def revision_of(v: Verification) -> int | None:
        candidates = revisions.get(v.record_version) or []
        seen = [number for number, created_at in candidates if created_at <= v.created_at]
        if seen:
            return seen[-1]
        return candidates[0][0] if candidates else None

    entries: list[VerificationEntry] = []
    for v in rows:
        is_edit = v.note == Verification.OWNER_EDIT_NOTE
        previous = entries[-1] if entries else None
        if (
            is_edit
            and previous is not None
            and previous.edits
            and previous.verification.actor_id == v.actor_id
        ):
            previous.edits += 1
            previous.first_revision = revision_of(v)
            continue
        revision = revision_of(v)
        entries.append(
            VerificationEntry(
                verification=v,
                revision=revision,
                first_revision=revision if is_edit else None,
                edits=1 if is_edit else 0,
            )
        )
    more = truncated or len(entries) > limit
    return entries[:limit], more
