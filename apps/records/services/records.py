"""Creating and editing one record: create (with its per-space key), update under optimistic
concurrency, archive and unarchive, restore an old revision."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.accounts.models import Membership, Space, Team, User
from apps.core import secret_scan
from apps.core.errors import Conflict, InvalidInput
from apps.records import anchors as anchors_mod
from apps.records import evidence, policy
from apps.records.models import (
    KIND_PREFIX,
    CreateSubmission,
    Record,
    RecordKeyCounter,
    Revision,
    Verification,
)
from apps.records.services.common import (
    actor_user,
    check_version,
    locked,
    refresh_freshness,
    refresh_search,
    require_edit,
    require_view,
    resolve_reasons,
    write_revision,
)
from apps.records.services.validation import EDITABLE_FIELDS, MATERIAL_FIELDS, full_clean, normalise
from apps.records.services.verification import add_verification
from apps.retrieval import lexical
from apps.retrieval.services import schedule_embedding


def _allocate_number(space: Space, kind: str, wanted: int | None = None) -> int:
    """Hand out the next number for (space, kind) with one atomic upsert: no two creates can get
    the same number, however many run at once (the row lock is held until commit)."""
    table = RecordKeyCounter._meta.db_table
    with connection.cursor() as cursor:
        if wanted is None:
            cursor.execute(
                f"""
                INSERT INTO {table} (space_id, kind, last_number) VALUES (%s, %s, 1)
                ON CONFLICT (space_id, kind)
                DO UPDATE SET last_number = {table}.last_number + 1
                RETURNING last_number
                """,  # noqa: S608 - table name is ours, values are parameters
                [space.pk, kind],
            )
        else:
            cursor.execute(
                f"""
                INSERT INTO {table} (space_id, kind, last_number) VALUES (%s, %s, %s)
                ON CONFLICT (space_id, kind)
                DO UPDATE SET last_number = GREATEST({table}.last_number, EXCLUDED.last_number)
                RETURNING %s
                """,  # noqa: S608
                [space.pk, kind, wanted, wanted],
            )
        return int(cursor.fetchone()[0])


@transaction.atomic
def record_create(
    *,
    space: Space,
    kind: str,
    title: str,
    actor,
    summary: str = "",
    body: str = "",
    status: str = Record.Status.DRAFT,
    owner_user: User | None = None,
    owner_team: Team | None = None,
    tags: Iterable[str] | None = None,
    anchors: Iterable[str] | None = None,
    reversibility: str = "",
    impact: str = "",
    decided_on: dt.date | str | None = None,
    deciders: str = "",
    valid_until: dt.date | str | None = None,
    number: int | None = None,
    source_path: str = "",
    message: str = "",
    now: dt.datetime | None = None,
    allow_secrets: bool = False,
    submission: tuple[str, str] | None = None,
) -> Record:
    """Create a record with the next free key of its kind (or `number`, when it is free).

    `submission`: (token, fingerprint) of the web form that sent it, remembered so that the
    same form sent again finds this record (see apps.web.selectors.submitted_twice).

    Text that looks like a credential is refused (apps.core.secret_scan) unless a space admin
    passes `allow_secrets=True`, which is audited."""
    require_edit(actor, space)
    if kind not in Record.Kind.values:
        raise InvalidInput(
            f"Unknown kind {kind!r}; use one of {', '.join(Record.Kind.values)}.",
            details={"kind": [f"{kind!r} is not a valid kind."]},
        )
    if status == Record.Status.SUPERSEDED:
        raise InvalidInput(
            "A new record cannot start out superseded; supersede it with a link instead.",
            details={"status": ["Use a supersedes link."]},
        )
    if number is not None and (not isinstance(number, int) or number < 1):
        raise InvalidInput(
            "The number must be a positive integer.", details={"number": ["Invalid."]}
        )
    fields = normalise(
        {
            "title": title,
            "summary": summary,
            "body": body,
            "owner_user": owner_user,
            "owner_team": owner_team,
            "tags": tags,
            "anchors": anchors,
            "decided_on": decided_on,
            "deciders": deciders,
            "valid_until": valid_until,
        },
        space=space,
    )
    secret_scan.check_record_fields(
        fields=fields, actor=actor, space=space, allow_secrets=allow_secrets
    )
    now = now or timezone.now()
    user = actor_user(actor)
    record = Record(
        space=space,
        kind=kind,
        status=status,
        reversibility=reversibility or "",
        impact=impact or "",
        source_path=source_path,
        created_at=now,
        updated_at=now,
        created_by=user,
        updated_by=user,
        last_verified_at=None,
        **fields,
    )
    record.anchor_patterns = anchors_mod.compile_anchors(record.anchors)
    record.number = 0
    record.key = "pending"
    record.next_review_at = policy.next_review_at(record, now=now)
    full_clean(record)
    if number is not None and Record.objects.filter(space=space, kind=kind, number=number).exists():
        raise Conflict(
            f"{KIND_PREFIX[kind]}-{number} already exists in {space.name}.",
            details={"number": ["Taken."]},
        )
    record.number = _allocate_number(space, kind, number)
    record.key = f"{KIND_PREFIX[kind]}-{record.number}"
    try:
        with transaction.atomic():
            record.save()
    except IntegrityError as exc:
        raise Conflict(f"Could not create the record: {exc}") from None
    refresh_search(record)
    schedule_embedding(record.pk)
    refresh_freshness(record, now=now)
    write_revision(record, action=Revision.Action.CREATE, actor=actor, message=message or "Created")
    if submission and submission[0] and user is not None:
        CreateSubmission.objects.create(
            user=user, token=submission[0][:64], fingerprint=submission[1][:64], record=record
        )
    return record


def create_submission_prune(*, now: dt.datetime | None = None) -> int:
    """Forget create-form submissions older than `CreateSubmission.KEEP` (the double-submit
    check needs only recent ones); returns how many rows went."""
    cutoff = (now or timezone.now()) - CreateSubmission.KEEP
    deleted, _ = CreateSubmission.objects.filter(created_at__lt=cutoff).delete()
    return deleted


@transaction.atomic
def record_update(
    *,
    record: Record,
    actor,
    expected_version: int | None,
    changes: dict[str, Any],
    message: str = "",
    action: str = Revision.Action.UPDATE,
    now: dt.datetime | None = None,
    allow_secrets: bool = False,
    allow_archived: bool = False,
) -> Record:
    """Apply `changes` (a subset of EDITABLE_FIELDS) if the record is still at `expected_version`.

    Raises VersionConflict when someone else saved first: nothing is overwritten. Changed text
    that looks like a credential is refused as in record_create (`allow_secrets`: admins only).
    An archived record is read-only until unarchived (`allow_archived`: the markdown import,
    which mirrors files, may still update it).
    """
    require_view(actor, record)
    current = locked(record)
    require_edit(actor, current.space)
    if current.archived_at is not None and not allow_archived:
        raise Conflict(f"{current.key} is archived: unarchive it before editing it.")
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(
            f"These fields cannot be changed: {', '.join(sorted(unknown))}.",
            details={name: ["Not editable."] for name in sorted(unknown)},
        )
    check_version(current, expected_version)
    if (
        changes.get("status") == Record.Status.SUPERSEDED
        and current.status != Record.Status.SUPERSEDED
    ):
        raise InvalidInput(
            "Mark a record superseded by linking its successor (Supersede), not by editing its status.",
            details={"status": ["Use supersede."]},
        )
    if "status" in changes and changes["status"] not in Record.Status.values:
        raise InvalidInput(
            f"Unknown status {changes['status']!r}.",
            details={"status": [f"{changes['status']!r} is not a valid status."]},
        )
    if "reversibility" in changes and changes["reversibility"] is None:
        changes = {**changes, "reversibility": ""}
    if "impact" in changes and changes["impact"] is None:
        changes = {**changes, "impact": ""}
    fields = normalise(changes, space=current.space, current_owner_id=current.owner_user_id)
    secret_scan.check_record_fields(
        fields={k: v for k, v in fields.items() if getattr(current, k) != v},
        actor=actor,
        space=current.space,
        allow_secrets=allow_secrets,
        record=current,
    )
    if "owner_user" in fields and fields["owner_user"] is not None and "owner_team" not in fields:
        fields["owner_team"] = None
    if "owner_team" in fields and fields["owner_team"] is not None and "owner_user" not in fields:
        fields["owner_user"] = None
    changed = {name for name, value in fields.items() if getattr(current, name) != value}
    # "was deprecated" / "was rejected" / "was edited", for the dependents' reasons.
    why = evidence.status_change_reason(current.status, fields.get("status", current.status))
    if not changed:
        return current
    for name in changed:
        setattr(current, name, fields[name])
    if "anchors" in changed:
        current.anchor_patterns = anchors_mod.compile_anchors(current.anchors)
    full_clean(current)
    now = now or timezone.now()
    user = actor_user(actor)
    current.version += 1
    current.updated_at = now
    current.updated_by = user
    material = bool(changed & MATERIAL_FIELDS)
    if material:
        resolve_reasons(current, now=now)
        # An owner editing the substance of their own record has just re-checked it.
        if user is not None and current.owner_user_id == user.pk:
            current.last_verified_at = now
            current.next_review_at = policy.next_review_at(current, now=now)
            add_verification(
                current,
                actor=actor,
                outcome=Verification.Outcome.STILL_TRUE,
                note=Verification.OWNER_EDIT_NOTE,
                now=now,
            )
    if changed & {"reversibility", "impact"}:
        # The review interval depends on these: re-date from the last check, not from now.
        base = current.last_verified_at or current.created_at
        current.next_review_at = policy.next_review_at(current, now=base)
    if changed & {"owner_user", "owner_team"} and (current.owner_user_id or current.owner_team_id):
        evidence.owner_assigned(current, now=now)
    current.save()
    refresh_search(current)
    schedule_embedding(current.pk)
    refresh_freshness(current, now=now)
    revision = write_revision(current, action=action, actor=actor, message=message)
    if material:
        evidence.linked_record_changed(
            current,
            why=why,
            now=now,
            # "was edited": the reason links to what changed (a status change speaks for itself).
            revision_number=revision.number if why == "was edited" else None,
        )
    return current


@transaction.atomic
def record_archive(*, record: Record, actor, now: dt.datetime | None = None) -> Record:
    """Archive instead of delete: the record leaves lists and context, its history stays."""
    require_view(actor, record)
    current = locked(record)
    require_edit(actor, current.space)
    if current.archived_at is not None:
        return current
    now = now or timezone.now()
    current.archived_at = now
    current.version += 1
    current.updated_at = now
    current.updated_by = actor_user(actor)
    current.save()
    lexical.index_record(current.pk)  # archived records leave the BM25 statistics
    write_revision(current, action=Revision.Action.ARCHIVE, actor=actor, message="Archived")
    evidence.linked_record_changed(current, why="was archived", now=now)
    return current


@transaction.atomic
def record_unarchive(*, record: Record, actor, now: dt.datetime | None = None) -> Record:
    require_view(actor, record)
    current = locked(record)
    require_edit(actor, current.space)
    if current.archived_at is None:
        return current
    now = now or timezone.now()
    current.archived_at = None
    current.version += 1
    current.updated_at = now
    current.updated_by = actor_user(actor)
    current.save()
    lexical.index_record(current.pk)
    write_revision(current, action=Revision.Action.UNARCHIVE, actor=actor, message="Unarchived")
    return current


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
