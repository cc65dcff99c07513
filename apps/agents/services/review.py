"""A person reviews a proposal: accepts it (through the record services, so the revision, search
data and staleness evidence are written as for any edit), edits then accepts, or rejects it
with a note the agent can read back."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.accounts import access
from apps.accounts.models import ApiToken, User
from apps.agents.models import Proposal
from apps.agents.services.checks import MAX_RATIONALE, clean_text
from apps.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from apps.records import services as record_services
from apps.records.models import Record


def can_review(user, proposal: Proposal) -> bool:
    """A person (not a token) who may edit the space and owns the record (or is in its owning
    team), or any admin of the space; new records: the space's editors."""
    if user is None or isinstance(user, ApiToken) or not getattr(user, "is_authenticated", False):
        return False
    if not access.can_edit(user, proposal.space):
        return False
    if access.can_admin(user, proposal.space) or proposal.record is None:
        return True
    record = proposal.record
    if record.owner_user_id is not None:
        return record.owner_user_id == user.pk
    if record.owner_team is not None:
        return record.owner_team.members.filter(pk=user.pk).exists()
    return False


def _locked_pending(proposal: Proposal, actor: User | ApiToken) -> Proposal:
    if isinstance(actor, ApiToken) or access.user_of(actor) is None:
        raise Forbidden("Proposals are reviewed by people, signed in.")
    current = (
        Proposal.objects.select_for_update(of=("self",))
        .select_related("space", "record", "agent")
        .filter(pk=proposal.pk)
        .first()
    )
    if current is None or not access.can_view(actor, current.space):
        raise NotFound("Proposal not found.")
    if not can_review(actor, current):
        raise Forbidden("Only the record's owner or a space admin can review this proposal.")
    if current.status != Proposal.Status.PENDING:
        raise Conflict(f"This proposal was already {current.get_status_display().lower()}.")
    return current


def _credit(proposal: Proposal, actor: User | ApiToken, *, edited: bool) -> str:
    how = "edited and accepted" if edited else "accepted"
    return (
        f"Proposed by agent {proposal.agent.name} (proposal #{proposal.pk}), "
        f"{how} by {access.user_of(actor)}"
    )[:300]


def _create_record(
    current: Proposal, actor: User | ApiToken, *, edits: dict[str, Any] | None
) -> Record:
    fields = {**current.fields, **(edits or {})}
    kind = fields.pop("kind", Record.Kind.DECISION)
    return record_services.record_create(
        space=current.space,
        kind=kind,
        actor=actor,
        status=Record.Status.DRAFT,
        owner_user=access.user_of(actor),
        title=fields.get("title", ""),
        summary=fields.get("summary", ""),
        body=fields.get("body", ""),
        tags=fields.get("tags"),
        anchors=fields.get("anchors"),
        message=_credit(current, actor, edited=bool(edits)),
    )


def _change_record(
    current: Proposal,
    actor: User | ApiToken,
    *,
    record_id: int,
    edits: dict[str, Any] | None,
    seen_version: int | None,
    now: dt.datetime,
) -> Record:
    record = Record.objects.get(pk=record_id)
    if record.version != current.base_version and seen_version != record.version:
        raise Conflict(
            f"{record.key} changed since the agent read it (version {current.base_version}; "
            f"now {record.version}). Compare the proposal with the current text, then "
            "edit and accept it, or reject it.",
            details={"current_version": record.version, "base_version": current.base_version},
            code="proposal_conflict",
        )
    expected = seen_version if seen_version is not None else current.base_version
    if current.kind == Proposal.Kind.UPDATE:
        changes = {**current.fields, **(edits or {})}
    else:
        # Accepting "no longer holds" deprecates the record; an edited acceptance applies
        # the reviewer's edits instead.
        changes = dict(edits) if edits else {"status": Record.Status.DEPRECATED}
    return record_services.record_update(
        record=record,
        actor=actor,
        expected_version=expected,
        changes=changes,
        message=_credit(current, actor, edited=bool(edits)),
        now=now,
    )


@transaction.atomic
def proposal_accept(
    *,
    proposal: Proposal,
    actor: User | ApiToken,
    edits: dict[str, Any] | None = None,
    seen_version: int | None = None,
    note: str = "",
) -> Proposal:
    """Apply a proposal through the record services, crediting the agent and the approver.

    A change proposed against an older version than the record's current one is a conflict: it
    is applied only when the reviewer saw the current version (`seen_version`) and, having
    compared, accepts (usually after editing)."""
    current = _locked_pending(proposal, actor)
    note = clean_text(note, field="note", limit=MAX_RATIONALE)
    now = timezone.now()
    if current.record_id is None:  # a new record (updates and flags always name theirs)
        record = _create_record(current, actor, edits=edits)
    else:
        record = _change_record(
            current,
            actor,
            record_id=current.record_id,
            edits=edits,
            seen_version=seen_version,
            now=now,
        )
    revision = record.revisions.order_by("-number").values_list("number", flat=True).first()
    current.status = Proposal.Status.ACCEPTED
    current.reviewer = access.user_of(actor)
    current.reviewed_at = now
    current.review_note = note
    current.edited = bool(edits)
    current.result_record = record
    current.result_revision = revision
    current.save()
    return current


@transaction.atomic
def proposal_reject(*, proposal: Proposal, actor: User | ApiToken, note: str) -> Proposal:
    """Reject with a note the agent reads back (required)."""
    current = _locked_pending(proposal, actor)
    note = clean_text(note, field="note", limit=MAX_RATIONALE)
    if not note:
        raise InvalidInput(
            "Say why, so the agent (and its owner) can learn from it.",
            details={"note": ["Required."]},
        )
    current.status = Proposal.Status.REJECTED
    current.reviewer = access.user_of(actor)
    current.reviewed_at = timezone.now()
    current.review_note = note
    current.save()
    return current
