"""Creating and editing one record: create (with its per-space key) and update under optimistic
concurrency."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from apps.accounts.models import Space, Team, User
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
from apps.records.revisions import write_revision
from apps.records.services.common import (
    actor_user,
    bump_version,
    check_version,
    locked_for_edit,
    refresh_freshness,
    refresh_search,
    require_edit,
    resolve_reasons,
)
from apps.records.services.validation import EDITABLE_FIELDS, MATERIAL_FIELDS, full_clean, normalise
from apps.records.services.verification import add_verification
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
    _check_new(kind=kind, status=status, number=number)
    content = {
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
    }
    fields = _checked_content(content, space=space, actor=actor, allow_secrets=allow_secrets)
    columns = {
        "status": status,
        "reversibility": reversibility or "",
        "impact": impact or "",
        "source_path": source_path,
    }
    record = _new_record(space, kind, fields | columns, actor=actor, now=now or timezone.now())
    _save_with_key(record, number)
    _after_content_change(
        record, action=Revision.Action.CREATE, actor=actor, message=message or "Created"
    )
    _remember_submission(record, submission)
    return record


def _check_new(*, kind: str, status: str, number: int | None) -> None:
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


def _checked_content(
    content: dict[str, Any], *, space: Space, actor, allow_secrets: bool
) -> dict[str, Any]:
    """The new record's editable fields, normalised, after the credential check."""
    fields = normalise(content, space=space)
    secret_scan.check_record_fields(
        fields=fields, actor=actor, space=space, allow_secrets=allow_secrets
    )
    return fields


def _new_record(
    space: Space, kind: str, values: dict[str, Any], *, actor, now: dt.datetime
) -> Record:
    """The unsaved record, its review date set and the model's checks passed; no key yet."""
    user = actor_user(actor)
    record = Record(
        space=space,
        kind=kind,
        created_at=now,
        updated_at=now,
        created_by=user,
        updated_by=user,
        last_verified_at=None,
        **values,
    )
    record.anchor_patterns = anchors_mod.compile_anchors(record.anchors)
    record.number = 0
    record.key = "pending"
    record.next_review_at = policy.next_review_at(record, now=now)
    full_clean(record)
    return record


def _save_with_key(record: Record, number: int | None) -> None:
    """Give the record its key (`number` when it is free, else the next one) and save it."""
    space, kind = record.space, record.kind
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


def _after_content_change(record: Record, *, action: str, actor, message: str) -> Revision:
    """After a saved create or edit: search data, the embedding, the cached freshness (as of
    the change) and the revision."""
    refresh_search(record)
    schedule_embedding(record.pk)
    refresh_freshness(record, now=record.updated_at)
    return write_revision(record, action=action, actor=actor, message=message)


def _remember_submission(record: Record, submission: tuple[str, str] | None) -> None:
    user = record.created_by
    if submission and submission[0] and user is not None:
        CreateSubmission.objects.create(
            user=user, token=submission[0][:64], fingerprint=submission[1][:64], record=record
        )


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
    current = locked_for_edit(actor, record)
    _check_changes(current, changes, expected_version, allow_archived=allow_archived)
    fields = _checked_changes(current, changes, actor=actor, allow_secrets=allow_secrets)
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
    bump_version(current, actor=actor, now=now)
    material = bool(changed & MATERIAL_FIELDS)
    if material:
        _material_edit(current, actor=actor, now=now)
    if changed & {"reversibility", "impact"}:
        # The review interval depends on these: re-date from the last check, not from now.
        base = current.last_verified_at or current.created_at
        current.next_review_at = policy.next_review_at(current, now=base)
    if changed & {"owner_user", "owner_team"} and (current.owner_user_id or current.owner_team_id):
        evidence.owner_assigned(current, now=now)
    current.save()
    revision = _after_content_change(current, action=action, actor=actor, message=message)
    if material:
        evidence.linked_record_changed(
            current,
            why=why,
            now=now,
            # "was edited": the reason links to what changed (a status change speaks for itself).
            revision_number=revision.number if why == "was edited" else None,
        )
    return current


def _check_changes(
    current: Record, changes: dict[str, Any], expected_version: int | None, *, allow_archived: bool
) -> None:
    """Refuse an edit of an archived record, of fields no one edits, of a version someone else
    has replaced, or to a status the editor cannot set."""
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


def _checked_changes(
    current: Record, changes: dict[str, Any], *, actor, allow_secrets: bool
) -> dict[str, Any]:
    """`changes` normalised, after the credential check of the text that changes; setting one
    owner clears the other."""
    changes = dict(changes)
    for name in ("reversibility", "impact"):
        if name in changes and changes[name] is None:
            changes[name] = ""  # "none" is stored blank
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
    return fields


def _material_edit(current: Record, *, actor, now: dt.datetime) -> None:
    """A material edit resolves the record's open suspect reasons; an owner editing the
    substance of their own record has just re-checked it."""
    resolve_reasons(current, now=now)
    user = actor_user(actor)
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
