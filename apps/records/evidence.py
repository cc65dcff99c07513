"""Staleness evidence raised by record writes: records that lean on a changed record become suspect.

A record R leans on X when R depends_on X, R implements X, or X constrains R. When X is
materially edited, superseded, deprecated or archived, each such R gets an open SuspectReason
naming X, and its freshness becomes `suspect` until it is verified or edited.
"""

from __future__ import annotations

import datetime as dt

from django.db.models import Q

from apps.records.models import Link, Record, SuspectReason

LEANS_ON = (Link.Type.DEPENDS_ON, Link.Type.IMPLEMENTS)


def dependents_of(record: Record):
    """Records that lean on `record` (not archived)."""
    return (
        Record.objects.filter(archived_at__isnull=True)
        .filter(
            Q(outgoing_links__target=record, outgoing_links__type__in=LEANS_ON)
            | Q(incoming_links__source=record, incoming_links__type=Link.Type.CONSTRAINS)
        )
        .exclude(pk=record.pk)
        .distinct()
    )


def linked_record_changed(record: Record, *, why: str, now: dt.datetime) -> int:
    """Mark every dependent of `record` suspect; returns how many records got a new reason."""
    dependents = list(dependents_of(record).values_list("pk", flat=True))
    if not dependents:
        return 0
    reasons = [
        SuspectReason(
            record_id=pk,
            cause=SuspectReason.Cause.LINKED_RECORD_CHANGED,
            message=f"{record.key} {record.title!r} {why}",
            cause_record=record,
            details={"key": record.key, "version": record.version},
            created_at=now,
        )
        for pk in dependents
    ]
    SuspectReason.objects.bulk_create(reasons)
    Record.objects.filter(pk__in=dependents).update(freshness=Record.Freshness.SUSPECT)
    return len(reasons)
