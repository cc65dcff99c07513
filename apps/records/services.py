"""Every write to records goes through these functions.

Each one checks the actor's rights, validates, writes the change and its revision, refreshes the
search data and raises staleness evidence, all in one transaction. A refused write changes
nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from django.contrib.postgres.search import SearchVector
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import Value
from django.utils import timezone

from apps.accounts import access
from apps.accounts.models import Membership, Space, Team, User
from apps.core import secret_scan
from apps.core.errors import Conflict, Forbidden, InvalidInput, NotFound, VersionConflict
from apps.core.text import strip_invisible
from apps.records import anchors as anchors_mod
from apps.records import evidence, owners, policy
from apps.records import fields as record_fields
from apps.records.models import (
    KIND_PREFIX,
    CreateSubmission,
    Link,
    Record,
    RecordKeyCounter,
    Revision,
    SuspectReason,
    Verification,
)
from apps.retrieval import lexical
from apps.retrieval.services import schedule_embedding

# Fields a person edits (a revision snapshots all of them, plus a few derived ones), and the
# "material" ones: changing one makes records that depend on this one suspect and resolves this
# record's own open suspect reasons. Both come from the one table of fields (apps.records.fields).
EDITABLE_FIELDS = record_fields.EDITABLE_FIELDS
MATERIAL_FIELDS = record_fields.MATERIAL_FIELDS
MAX_TAGS = record_fields.BY_NAME["tags"].max_items
MAX_ANCHORS = record_fields.BY_NAME["anchors"].max_items
MAX_BODY_CHARS = record_fields.BY_NAME["body"].max_length
# Tags are short labels people filter by; anything else (quotes, angle brackets…) is a typo.
TAG_RE = re.compile(r"[\w][\w .:/+#-]*")


# --- helpers ----------------------------------------------------------------------------------


def tag_problem(tags: Iterable[str]) -> str:
    """Why these (cleaned, lower-cased) tags cannot be saved ("" when they can): the one rule
    for the web editor, the API, imports and MCP."""
    bad = [t for t in tags if not TAG_RE.fullmatch(t)]
    if not bad:
        return ""
    shown = ", ".join(f"“{t[:30]}”" for t in bad[:3])
    return f"Tags use letters, digits, spaces and - _ . / : + # only; fix {shown}."


def _require_view(actor, record: Record) -> None:
    if not access.can_view(actor, record.space):
        raise NotFound(f"Record {record.pk} not found.")


def _require_edit(actor, space: Space) -> None:
    role = access.role_in(actor, space)
    if role is None:
        raise NotFound(f"Space {space.slug!r} not found.")
    if access.ROLE_RANK[role] < access.ROLE_RANK[Membership.Role.EDITOR]:
        raise Forbidden(f"You need to be an editor of {space.name} to change its records.")


def _actor_user(actor) -> User | None:
    return access.user_of(actor)


def _clean_list(values: Iterable[str] | None, *, field: str, limit: int, max_len: int) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidInput(f"{field} must be a list of strings.", details={field: ["Not a list."]})
    cleaned: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise InvalidInput(
                f"{field} must be a list of strings.", details={field: ["Not a string."]}
            )
        value = strip_invisible(value).strip()
        if not value:
            continue
        if len(value) > max_len:
            raise InvalidInput(
                f"Each {field[:-1]} must be at most {max_len} characters.",
                details={field: [f"{value[:40]}… is longer than {max_len} characters."]},
            )
        if value not in cleaned:
            cleaned.append(value)
    if len(cleaned) > limit:
        raise InvalidInput(
            f"At most {limit} {field} are allowed.", details={field: [f"More than {limit}."]}
        )
    return cleaned


def _normalise(
    fields: dict[str, Any], *, space: Space, current_owner_id: int | None = None
) -> dict[str, Any]:
    """Type- and range-check editable fields; raises InvalidInput naming each bad field.

    A deactivated user cannot become an owner (they would get no reminders, and the next sweep
    would orphan the record again); one who already owns the record may stay while other fields
    are edited."""
    out = dict(fields)
    errors: dict[str, list[str]] = {}
    for name in record_fields.TEXT_FIELDS:
        if name in out:
            value = out[name]
            if value is None:
                value = ""
            if not isinstance(value, str):
                errors[name] = ["Must be text."]
                continue
            # Short fields lose bidirectional controls and invisible characters (apps.core.text):
            # a title must read as its bytes. The body keeps them; outputs reveal them.
            out[name] = strip_invisible(value).strip() if name != "body" else value
    if "title" in out and not errors.get("title") and not out["title"]:
        errors["title"] = ["A title is required."]
    if "summary" in out and isinstance(out["summary"], str) and "\n" in out["summary"]:
        errors["summary"] = ["The summary is one line."]
    if "body" in out and isinstance(out["body"], str) and len(out["body"]) > MAX_BODY_CHARS:
        over = len(out["body"]) - MAX_BODY_CHARS
        errors["body"] = [
            f"The body is limited to {MAX_BODY_CHARS:,} characters; this one is {over:,} over. "
            "Move long material to a linked record or a document and link to it."
        ]
    if isinstance(out.get("body"), str) and "\x00" in out["body"]:
        errors["body"] = ["The body contains a NUL character."]
    try:
        if "tags" in out:
            tags = out["tags"]
            if isinstance(tags, list | tuple):
                # Lower-case before de-duplicating, so "Events, events" is one tag.
                tags = [t.lower() if isinstance(t, str) else t for t in tags]
            out["tags"] = _clean_list(
                tags, field="tags", limit=MAX_TAGS, max_len=record_fields.BY_NAME["tags"].max_length
            )
            if problem := tag_problem(out["tags"]):
                errors["tags"] = [problem]
        if "anchors" in out:
            anchors = _clean_list(
                out["anchors"],
                field="anchors",
                limit=MAX_ANCHORS,
                max_len=record_fields.BY_NAME["anchors"].max_length,
            )
            try:
                # Paths from the repository root: "/x" and "x\y" are normalised, paths on one
                # computer are refused (anchors.clean_anchor; the web form shows its warnings).
                out["anchors"] = anchors_mod.clean_anchors(anchors)[0]
            except anchors_mod.AnchorRefused as exc:
                errors["anchors"] = [str(exc)]
    except InvalidInput as exc:
        errors.update(exc.details)
    for name in record_fields.DATE_FIELDS:
        value = out.get(name)
        if value in ("", None):
            if name in out:
                out[name] = None
            continue
        if isinstance(value, str):
            try:
                out[name] = dt.date.fromisoformat(value)
            except ValueError:
                errors[name] = ["Use a date like 2026-01-31."]
        elif isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            errors[name] = ["Use a date like 2026-01-31."]
    if "owner_user" in out and out["owner_user"] is not None:
        owner = out["owner_user"]
        if not isinstance(owner, User):
            errors["owner_user"] = ["Unknown user."]
        elif refused := owners.problem(owner, space=space, current_owner_id=current_owner_id):
            errors["owner_user"] = [refused]
    if out.get("owner_team") is not None and not isinstance(out["owner_team"], Team):
        errors["owner_team"] = ["Unknown team."]
    if out.get("owner_user") is not None and out.get("owner_team") is not None:
        errors["owner_team"] = ["A record is owned by a user or by a team, not both."]
    if errors:
        raise InvalidInput("The record is not valid.", details=errors)
    return out


def _full_clean(record: Record) -> None:
    """Let the model check choices and lengths; convert to InvalidInput."""
    if record.kind != Record.Kind.DECISION and (record.reversibility or record.impact):
        raise InvalidInput(
            "Reversibility and impact apply to decisions only.",
            details={"reversibility": ["Only decisions have a reversibility and impact."]},
        )
    try:
        record.full_clean(
            exclude=["space", "number", "key", "next_review_at", "created_by", "updated_by"],
            validate_unique=False,
            validate_constraints=False,
        )
    except ValidationError as exc:
        raise InvalidInput("The record is not valid.", details=exc.message_dict) from None


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


def _write_revision(
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
        author=_actor_user(actor),
    )


def _refresh_search(record: Record) -> None:
    """Weighted full-text data: key and title (A), summary and tags (B), body (C)."""
    Record.objects.filter(pk=record.pk).update(
        search_vector=(
            SearchVector(Value(record.key), weight="A", config="simple")
            + SearchVector("title", weight="A", config="english")
            + SearchVector("summary", weight="B", config="english")
            + SearchVector(Value(" ".join(record.tags)), weight="B", config="english")
            + SearchVector("body", weight="C", config="english")
        )
    )
    # The BM25 postings and statistics, in the same transaction (found at once).
    lexical.index_record(record.pk)


def refresh_freshness(record: Record, *, now: dt.datetime | None = None) -> str:
    """Recompute and store (cache) the derived freshness of one record."""
    now = now or timezone.now()
    has_reasons = SuspectReason.objects.filter(record=record, resolved_at__isnull=True).exists()
    state = policy.record_freshness(record, now=now, has_open_reasons=has_reasons)
    if state != record.freshness:
        record.freshness = state
        Record.objects.filter(pk=record.pk).update(freshness=state)
    return state


def _resolve_reasons(record: Record, *, now: dt.datetime) -> None:
    SuspectReason.objects.filter(record=record, resolved_at__isnull=True).update(resolved_at=now)


def _locked(record: Record) -> Record:
    """Re-read the record under a row lock, so concurrent writers queue behind each other."""
    try:
        return Record.objects.select_for_update().select_related("space").get(pk=record.pk)
    except Record.DoesNotExist:
        raise NotFound(f"Record {record.pk} not found.") from None


def _check_version(current: Record, expected_version: int | None) -> None:
    if expected_version is None:
        return
    if not isinstance(expected_version, int) or isinstance(expected_version, bool):
        raise InvalidInput("The expected version must be an integer.")
    if current.version != expected_version:
        raise VersionConflict(
            f"{current.key} was changed by someone else (you edited version {expected_version}; "
            f"it is now at version {current.version}).",
            current_version=current.version,
        )


# --- records ----------------------------------------------------------------------------------


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
    _require_edit(actor, space)
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
    fields = _normalise(
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
    user = _actor_user(actor)
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
    _full_clean(record)
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
    _refresh_search(record)
    schedule_embedding(record.pk)
    refresh_freshness(record, now=now)
    _write_revision(
        record, action=Revision.Action.CREATE, actor=actor, message=message or "Created"
    )
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
    _require_view(actor, record)
    current = _locked(record)
    _require_edit(actor, current.space)
    if current.archived_at is not None and not allow_archived:
        raise Conflict(f"{current.key} is archived: unarchive it before editing it.")
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise InvalidInput(
            f"These fields cannot be changed: {', '.join(sorted(unknown))}.",
            details={name: ["Not editable."] for name in sorted(unknown)},
        )
    _check_version(current, expected_version)
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
    fields = _normalise(changes, space=current.space, current_owner_id=current.owner_user_id)
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
    _full_clean(current)
    now = now or timezone.now()
    user = _actor_user(actor)
    current.version += 1
    current.updated_at = now
    current.updated_by = user
    material = bool(changed & MATERIAL_FIELDS)
    if material:
        _resolve_reasons(current, now=now)
        # An owner editing the substance of their own record has just re-checked it.
        if user is not None and current.owner_user_id == user.pk:
            current.last_verified_at = now
            current.next_review_at = policy.next_review_at(current, now=now)
            _add_verification(
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
    _refresh_search(current)
    schedule_embedding(current.pk)
    refresh_freshness(current, now=now)
    revision = _write_revision(current, action=action, actor=actor, message=message)
    if material:
        evidence.linked_record_changed(
            current,
            why=why,
            now=now,
            # "was edited": the reason links to what changed (a status change speaks for itself).
            revision_number=revision.number if why == "was edited" else None,
        )
    return current


def _set_status_locked(
    current: Record,
    *,
    status: str,
    actor,
    message: str,
    now: dt.datetime,
    related: Record | None = None,
) -> None:
    current.status = status
    current.version += 1
    current.updated_at = now
    current.updated_by = _actor_user(actor)
    current.save()
    refresh_freshness(current, now=now)
    _write_revision(
        current, action=Revision.Action.STATUS, actor=actor, message=message, related=related
    )


@transaction.atomic
def record_archive(*, record: Record, actor, now: dt.datetime | None = None) -> Record:
    """Archive instead of delete: the record leaves lists and context, its history stays."""
    _require_view(actor, record)
    current = _locked(record)
    _require_edit(actor, current.space)
    if current.archived_at is not None:
        return current
    now = now or timezone.now()
    current.archived_at = now
    current.version += 1
    current.updated_at = now
    current.updated_by = _actor_user(actor)
    current.save()
    lexical.index_record(current.pk)  # archived records leave the BM25 statistics
    _write_revision(current, action=Revision.Action.ARCHIVE, actor=actor, message="Archived")
    evidence.linked_record_changed(current, why="was archived", now=now)
    return current


@transaction.atomic
def record_unarchive(*, record: Record, actor, now: dt.datetime | None = None) -> Record:
    _require_view(actor, record)
    current = _locked(record)
    _require_edit(actor, current.space)
    if current.archived_at is None:
        return current
    now = now or timezone.now()
    current.archived_at = None
    current.version += 1
    current.updated_at = now
    current.updated_by = _actor_user(actor)
    current.save()
    lexical.index_record(current.pk)
    _write_revision(current, action=Revision.Action.UNARCHIVE, actor=actor, message="Unarchived")
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
        _write_revision(
            updated,
            action=Revision.Action.RESTORE,
            actor=actor,
            message=f"Restored revision {revision.number} (no changes)",
        )
    return updated


# --- links ------------------------------------------------------------------------------------


def _supersede_path_exists(start: Record, goal: Record) -> bool:
    """True when `start` already (transitively) supersedes `goal`."""
    table = Link._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE chain(id) AS (
                SELECT target_id FROM {table} WHERE source_id = %s AND type = 'supersedes'
                UNION
                SELECT l.target_id FROM {table} l JOIN chain c ON l.source_id = c.id
                WHERE l.type = 'supersedes'
            )
            SELECT EXISTS (SELECT 1 FROM chain WHERE id = %s)
            """,  # noqa: S608 - table name is ours
            [start.pk, goal.pk],
        )
        return bool(cursor.fetchone()[0])


@transaction.atomic
def record_link(
    *,
    source: Record,
    target: Record,
    type: str,
    actor,
    note: str = "",
    now: dt.datetime | None = None,
) -> Link:
    """Link two records. `supersedes` also marks the target superseded."""
    _require_view(actor, source)
    _require_view(actor, target)
    _require_edit(actor, source.space)
    if type not in Link.Type.values:
        raise InvalidInput(
            f"Unknown link type {type!r}; use one of {', '.join(Link.Type.values)}.",
            details={"type": [f"{type!r} is not a valid link type."]},
        )
    if not isinstance(note, str) or len(note) > 300:
        raise InvalidInput("The note is at most 300 characters.", details={"note": ["Too long."]})
    if source.pk == target.pk:
        raise InvalidInput("A record cannot link to itself.", details={"target": ["Same record."]})
    # Lock both ends in a fixed order so concurrent link/supersede calls cannot deadlock.
    locked = {
        r.pk: r
        for r in Record.objects.select_for_update()
        .filter(pk__in=[source.pk, target.pk])
        .order_by("pk")
    }
    source, target = locked[source.pk], locked[target.pk]
    if Link.objects.filter(source=source, target=target, type=type).exists():
        raise Conflict(f"{source.key} already {Link.Type(type).label} {target.key}.")
    if type == Link.Type.SUPERSEDES:
        if _supersede_path_exists(target, source):
            raise Conflict(
                f"{target.key} already supersedes {source.key} (directly or through other records); "
                "superseding it back would make a cycle."
            )
        if target.archived_at is None and source.archived_at is not None:
            raise InvalidInput("An archived record cannot supersede another; unarchive it first.")
    now = now or timezone.now()
    link = Link.objects.create(
        source=source,
        target=target,
        type=type,
        note=strip_invisible(note).strip(),
        created_at=now,
        created_by=_actor_user(actor),
    )
    _write_revision(
        source,
        action=Revision.Action.LINK,
        actor=actor,
        message=f"Linked: {Link.Type(type).label} {target.key}",
        related=target,
    )
    if type == Link.Type.SUPERSEDES and target.status != Record.Status.SUPERSEDED:
        _set_status_locked(
            target,
            status=Record.Status.SUPERSEDED,
            actor=actor,
            message=f"Superseded by {source.key}",
            now=now,
            related=source,
        )
        evidence.linked_record_changed(target, why="was superseded", by=source, now=now)
    return link


@transaction.atomic
def record_unlink(*, link: Link, actor, now: dt.datetime | None = None) -> None:
    """Remove a link. Removing the last `supersedes` link gives the target back its old status."""
    source, target = link.source, link.target
    _require_view(actor, source)
    _require_edit(actor, source.space)
    now = now or timezone.now()
    link_type = link.type
    link.delete()
    _write_revision(
        source,
        action=Revision.Action.UNLINK,
        actor=actor,
        message=f"Unlinked: {Link.Type(link_type).label} {target.key}",
        related=target,
    )
    if link_type == Link.Type.SUPERSEDES:
        still_superseded = Link.objects.filter(target=target, type=Link.Type.SUPERSEDES).exists()
        current = _locked(target)
        if not still_superseded and current.status == Record.Status.SUPERSEDED:
            previous = (
                Revision.objects.filter(record=current)
                .exclude(snapshot__status=Record.Status.SUPERSEDED)
                .order_by("-number")
                .first()
            )
            status = previous.snapshot["status"] if previous else Record.Status.ACCEPTED
            _set_status_locked(
                current,
                status=status,
                actor=actor,
                message=f"No longer superseded by {source.key}",
                now=now,
                related=source,
            )


def record_supersede(*, old: Record, new: Record, actor, note: str = "") -> Link:
    """`new` replaces `old`: a supersedes link from new to old; old becomes superseded."""
    return record_link(source=new, target=old, type=Link.Type.SUPERSEDES, actor=actor, note=note)


def carryable_links(*, old: Record, actor):
    """The links of `old` a successor may take over: its own outgoing links (what it depends on,
    implements, …), except supersedes, to records the actor can see that are not archived."""
    return (
        old.outgoing_links.exclude(type=Link.Type.SUPERSEDES)
        .filter(target__in=Record.objects.visible_to(actor).active())
        .select_related("target")
        .order_by("pk")
    )


@transaction.atomic
def record_supersede_with_new(
    *,
    old: Record,
    actor,
    fields: dict[str, Any],
    copy_links: Iterable[int] = (),
    note: str = "",
    message: str = "",
    allow_secrets: bool = False,
    submission: tuple[str, str] | None = None,
) -> tuple[Record, Link]:
    """Create a successor of `old` (same space, same kind) from `fields` (keyword arguments of
    record_create), link it new → old with `supersedes` (old becomes superseded), and give it
    the links of `old` named in `copy_links` (ids from `carryable_links`). All or nothing.

    Returns (new record, supersedes link)."""
    _require_view(actor, old)
    _require_edit(actor, old.space)
    available = {link.pk: link for link in carryable_links(old=old, actor=actor)}
    wanted = list(dict.fromkeys(copy_links))
    unknown = [pk for pk in wanted if pk not in available]
    if unknown:
        raise InvalidInput(
            f"{old.key} has no link {unknown[0]} to carry over.",
            details={"copy_links": [f"Not a link of {old.key}: {', '.join(map(str, unknown))}."]},
        )
    new = record_create(
        space=old.space,
        kind=old.kind,
        actor=actor,
        message=message or f"Supersedes {old.key}",
        allow_secrets=allow_secrets,
        submission=submission,
        **fields,
    )
    link = record_supersede(old=old, new=new, actor=actor, note=note)
    for pk in wanted:
        carried = available[pk]
        record_link(
            source=new, target=carried.target, type=carried.type, note=carried.note, actor=actor
        )
    return new, link


# --- verification -----------------------------------------------------------------------------


def _add_verification(
    record: Record, *, actor, outcome: str, note: str, now: dt.datetime, commit: str = ""
) -> Verification:
    linked = dict(Link.objects.filter(source=record).values_list("target__key", "target__version"))
    return Verification.objects.create(
        record=record,
        actor=_actor_user(actor),
        outcome=outcome,
        note=note[:500],
        record_version=record.version,
        linked_versions=linked,
        commit=commit[:64],
        created_at=now,
    )


@transaction.atomic
def record_verify(
    *,
    record: Record,
    actor,
    outcome: str = Verification.Outcome.STILL_TRUE,
    note: str = "",
    commit: str = "",
    valid_until: dt.date | str | None = None,
    now: dt.datetime | None = None,
) -> Verification:
    """Record that the record still holds (resets its review clock and clears suspect reasons),
    or that it needs an update (logged; the record stays as it is).

    "Still true" on a record whose valid-until date has passed decides that date too, or the
    sweep would flag it again within the hour: `valid_until` (a later date) replaces it, else
    it is cleared. Either way a revision by the verifier records the change, and the
    verification's `valid_until_change` attribute says which ("extended" or "cleared") for the
    confirmation page."""
    _require_view(actor, record)
    current = _locked(record)
    if outcome not in Verification.Outcome.values:
        raise InvalidInput(f"Unknown outcome {outcome!r}.", details={"outcome": ["Invalid."]})
    if not access.can_verify(actor, current):
        raise Forbidden("Only the record's owner or a space admin can verify it.")
    if current.archived_at is not None:
        raise InvalidInput("An archived record cannot be verified; unarchive it first.")
    if current.status == Record.Status.SUPERSEDED:
        raise InvalidInput(
            f"{current.key} is superseded: it no longer holds as written. Verify its successor."
        )
    if not isinstance(note, str) or not isinstance(commit, str):
        raise InvalidInput("Note and commit must be text.")
    now = now or timezone.now()
    change = ""
    previous_valid_until = current.valid_until
    if outcome == Verification.Outcome.STILL_TRUE and policy.valid_until_passed(
        current.valid_until, now=now
    ):
        change = _renew_valid_until(current, actor=actor, valid_until=valid_until, now=now)
    verification = _add_verification(
        current, actor=actor, outcome=outcome, note=note, now=now, commit=commit
    )
    if outcome == Verification.Outcome.STILL_TRUE:
        current.last_verified_at = now
        current.next_review_at = policy.next_review_at(current, now=now)
        Record.objects.filter(pk=current.pk).update(
            last_verified_at=now, next_review_at=current.next_review_at
        )
        _resolve_reasons(current, now=now)
        refresh_freshness(current, now=now)
    verification.valid_until_change = change
    verification.previous_valid_until = previous_valid_until if change else None
    return verification


def _renew_valid_until(current: Record, *, actor, valid_until, now: dt.datetime) -> str:
    """Replace a passed valid-until date with a later one, or clear it; returns "extended" or
    "cleared". The change is a revision by the verifier, so the history says who decided."""
    old = current.valid_until
    new = _normalise({"valid_until": valid_until}, space=current.space)["valid_until"]
    if new is not None and new <= timezone.localdate(now):
        raise InvalidInput(
            f"The new valid-until date must be after today; {old:%Y-%m-%d} has already passed.",
            details={"valid_until": ["Pick a later date, or leave it empty to clear it."]},
        )
    current.valid_until = new
    current.version += 1
    current.updated_at = now
    current.updated_by = _actor_user(actor)
    current.save(update_fields=["valid_until", "version", "updated_at", "updated_by"])
    if new is None:
        message = f"Verified as still true; its passed valid-until date ({old:%Y-%m-%d}) cleared"
    else:
        message = f"Verified as still true; valid until {new:%Y-%m-%d} (was {old:%Y-%m-%d})"
    _write_revision(current, action=Revision.Action.UPDATE, actor=actor, message=message)
    return "cleared" if new is None else "extended"
