"""A record's revisions: the snapshot of one version (everything needed to show, diff and
restore it) and the revision row that keeps it. Every write that changes a record ends here,
from the record services and from staleness evidence alike."""

from __future__ import annotations

from typing import Any

from apps.accounts import access
from apps.records import fields as record_fields
from apps.records.models import Link, Record, Revision


def snapshot(record: Record) -> dict[str, Any]:
    """Everything needed to show, diff and restore one version of a record."""
    # The target's id lets readers who cannot see it be shown HIDDEN_RECORD instead of its key
    # (records.selectors.present_revisions).
    links = [
        {"type": t, "target": key, "target_id": pk}
        for t, key, pk in Link.objects.filter(source=record)
        .order_by("type", "target__key")
        .values_list("type", "target__key", "target_id")
    ]
    return {
        "kind": record.kind,
        "key": record.key,
        **record_fields.snapshot_values(record),
        "owner_label": record.owner_label,
        "archived": record.archived_at is not None,
        "links": links,
    }


def write_revision(
    record: Record, *, action: str, actor, message: str = "", related: Record | None = None
) -> Revision:
    """`related` is the other record the message names by key (a link's other end, a
    successor), so it can be shown as HIDDEN_RECORD to readers who cannot see it."""
    last = (
        Revision.objects.filter(record=record)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )
    return Revision.objects.create(
        record=record,
        number=(last or 0) + 1,
        version=record.version,
        action=action,
        snapshot=snapshot(record),
        message=message[:300],
        related_record=related,
        author=access.user_of(actor),
    )
