"""What every record service does around its change: check the actor's rights, lock the row,
check the version, write the revision, refresh the search data and the cached freshness."""

from __future__ import annotations

import datetime as dt

from django.contrib.postgres.search import SearchVector
from django.db.models import Value
from django.utils import timezone

from apps.accounts import access
from apps.accounts.models import Membership, Space, User
from apps.core.errors import Forbidden, InvalidInput, NotFound, VersionConflict
from apps.records import policy
from apps.records.models import Record, SuspectReason
from apps.retrieval import lexical


def require_view(actor, record: Record) -> None:
    if not access.can_view(actor, record.space):
        raise NotFound(f"Record {record.pk} not found.")


def require_edit(actor, space: Space) -> None:
    role = access.role_in(actor, space)
    if role is None:
        raise NotFound(f"Space {space.slug!r} not found.")
    if not access.at_least(role, Membership.Role.EDITOR):
        raise Forbidden(f"You need to be an editor of {space.name} to change its records.")


def actor_user(actor) -> User | None:
    return access.user_of(actor)


def bump_version(record: Record, *, actor, now: dt.datetime) -> None:
    """A new version of the record, changed now by `actor` (the caller saves it)."""
    record.version += 1
    record.updated_at = now
    record.updated_by = actor_user(actor)


def refresh_search(record: Record) -> None:
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


def resolve_reasons(record: Record, *, now: dt.datetime) -> None:
    SuspectReason.objects.filter(record=record, resolved_at__isnull=True).update(resolved_at=now)


def locked_for_edit(actor, record: Record) -> Record:
    """The record re-read under a row lock, once the actor may see it and edit its space."""
    require_view(actor, record)
    current = locked(record)
    require_edit(actor, current.space)
    return current


def locked(record: Record) -> Record:
    """Re-read the record under a row lock, so concurrent writers queue behind each other."""
    try:
        return Record.objects.select_for_update().select_related("space").get(pk=record.pk)
    except Record.DoesNotExist:
        raise NotFound(f"Record {record.pk} not found.") from None


def check_version(current: Record, expected_version: int | None) -> None:
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
