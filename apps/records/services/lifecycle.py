"""A record leaves and comes back, and nothing is lost: archive (instead of delete), unarchive,
and restore an old revision as a new one."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from apps.accounts.models import Membership, Team, User
from apps.core.errors import InvalidInput
from apps.records import evidence
from apps.records.models import Record, Revision
from apps.records.revisions import write_revision
from apps.records.services.common import bump_version, locked_for_edit
from apps.records.services.records import record_update
from apps.records.services.validation import EDITABLE_FIELDS
from apps.retrieval import lexical


@transaction.atomic
def record_archive(*, record: Record, actor, now: dt.datetime | None = None) -> Record:
    """Archive instead of delete: the record leaves lists and context, its history stays."""
    now = now or timezone.now()
    current, changed = _set_archived(record, actor=actor, archived_at=now, now=now)
    if changed:
        evidence.linked_record_changed(current, why="was archived", now=now)
    return current


@transaction.atomic
def record_unarchive(*, record: Record, actor, now: dt.datetime | None = None) -> Record:
    current, _ = _set_archived(record, actor=actor, archived_at=None, now=now or timezone.now())
    return current


def _set_archived(
    record: Record, *, actor, archived_at: dt.datetime | None, now: dt.datetime
) -> tuple[Record, bool]:
    """Archive (`archived_at` a time) or unarchive (None) the record as a new version with a
    revision; (the record, False) when it already was."""
    current = locked_for_edit(actor, record)
    if (current.archived_at is None) == (archived_at is None):
        return current, False
    current.archived_at = archived_at
    bump_version(current, actor=actor, now=now)
    current.save()
    lexical.index_record(current.pk)  # archived records leave the BM25 statistics
    if archived_at is None:
        write_revision(current, action=Revision.Action.UNARCHIVE, actor=actor, message="Unarchived")
    else:
        write_revision(current, action=Revision.Action.ARCHIVE, actor=actor, message="Archived")
    return current, True


@transaction.atomic
def record_restore_revision(
    *,
    record: Record,
    revision: Revision,
    actor,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
) -> Record:
    """Bring back the content of an old revision as a new revision; nothing is lost."""
    if revision.record_id != record.pk:
        raise InvalidInput("That revision belongs to another record.")
    snap = revision.snapshot
    owner_user = (
        User.objects.filter(pk=snap.get("owner_user")).first() if snap.get("owner_user") else None
    )
    if (
        owner_user is not None
        and not Membership.objects.filter(user=owner_user, space=record.space).exists()
    ):
        owner_user = None
    owner_team = (
        Team.objects.filter(pk=snap.get("owner_team")).first() if snap.get("owner_team") else None
    )
    changes = {
        **{
            name: snap[name]
            for name in EDITABLE_FIELDS
            if name not in ("status", "owner_user", "owner_team")
        },
        "owner_user": owner_user,
        "owner_team": owner_team,
    }
    # A superseded status comes only from a supersedes link; restoring keeps the current one.
    if snap["status"] != Record.Status.SUPERSEDED:
        changes["status"] = snap["status"]
    current = Record.objects.get(pk=record.pk)
    if expected_version is None:
        expected_version = current.version
    if current.status == Record.Status.SUPERSEDED:
        changes.pop("status", None)
    updated = record_update(
        record=current,
        actor=actor,
        expected_version=expected_version,
        changes=changes,
        message=f"Restored revision {revision.number}",
        action=Revision.Action.RESTORE,
        now=now,
    )
    if updated.version == current.version:
        # Nothing differed; still note the restore so the history shows the intent.
        write_revision(
            updated,
            action=Revision.Action.RESTORE,
            actor=actor,
            message=f"Restored revision {revision.number} (no changes)",
        )
    return updated
