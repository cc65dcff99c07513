"""Verifying a record: an owner or space admin confirms it still holds (its review clock
restarts, its suspect reasons resolve) or says it needs an update."""

from __future__ import annotations

import datetime as dt

from django.db import transaction
from django.utils import timezone

from apps.accounts import access
from apps.core.errors import Forbidden, InvalidInput
from apps.records import policy
from apps.records.models import Link, Record, Revision, Verification
from apps.records.revisions import write_revision
from apps.records.services.common import (
    actor_user,
    bump_version,
    locked,
    refresh_freshness,
    require_view,
    resolve_reasons,
)
from apps.records.services.validation import normalise


def add_verification(
    record: Record, *, actor, outcome: str, note: str, now: dt.datetime, commit: str = ""
) -> Verification:
    linked = dict(Link.objects.filter(source=record).values_list("target__key", "target__version"))
    return Verification.objects.create(
        record=record,
        actor=actor_user(actor),
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
    require_view(actor, record)
    current = locked(record)
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
    verification = add_verification(
        current, actor=actor, outcome=outcome, note=note, now=now, commit=commit
    )
    if outcome == Verification.Outcome.STILL_TRUE:
        current.last_verified_at = now
        current.next_review_at = policy.next_review_at(current, now=now)
        Record.objects.filter(pk=current.pk).update(
            last_verified_at=now, next_review_at=current.next_review_at
        )
        resolve_reasons(current, now=now)
        refresh_freshness(current, now=now)
    verification.valid_until_change = change
    verification.previous_valid_until = previous_valid_until if change else None
    return verification


def _renew_valid_until(current: Record, *, actor, valid_until, now: dt.datetime) -> str:
    """Replace a passed valid-until date with a later one, or clear it; returns "extended" or
    "cleared". The change is a revision by the verifier, so the history says who decided."""
    old = current.valid_until
    new = normalise({"valid_until": valid_until}, space=current.space)["valid_until"]
    if new is not None and new <= timezone.localdate(now):
        raise InvalidInput(
            f"The new valid-until date must be after today; {old:%Y-%m-%d} has already passed.",
            details={"valid_until": ["Pick a later date, or leave it empty to clear it."]},
        )
    current.valid_until = new
    bump_version(current, actor=actor, now=now)
    current.save(update_fields=["valid_until", "version", "updated_at", "updated_by"])
    if new is None:
        message = f"Verified as still true; its passed valid-until date ({old:%Y-%m-%d}) cleared"
    else:
        message = f"Verified as still true; valid until {new:%Y-%m-%d} (was {old:%Y-%m-%d})"
    write_revision(current, action=Revision.Action.UPDATE, actor=actor, message=message)
    return "cleared" if new is None else "extended"
