"""Writes for registered agents: registration, tokens, proposals and their review, escalations.

An agent never edits a record. It proposes; a person accepts (through the record services, so
the revision, search data and staleness evidence are written as for any edit), edits then
accepts, or rejects with a note the agent can read back.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from rest_framework.throttling import SimpleRateThrottle

from apps.accounts import access
from apps.accounts.models import ApiToken, Membership, Space, Team, User
from apps.agents.models import (
    DEFAULT_SCOPES,
    DEFAULT_TOOLS,
    MCP_TOOLS,
    REST_SCOPES,
    Agent,
    Escalation,
    Proposal,
)
from apps.agents.scope import _refuse, agent_of, path_allowed
from apps.audit.models import AuditEvent
from apps.audit.services import audit_log
from apps.core import secret_scan
from apps.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from apps.core.links import absolute_url
from apps.core.text import strip_invisible
from apps.records import anchors as anchors_mod
from apps.records import services as record_services
from apps.records.models import Record

MAX_RATIONALE = 2_000
MAX_EVIDENCE = 5_000
MAX_ACTION = 2_000
# Fields an agent may propose to change on an existing record.
PROPOSABLE_FIELDS = ("title", "summary", "body", "tags", "anchors")
# The same escalation sent again within this window is the same escalation (retries).
ESCALATION_WINDOW = dt.timedelta(minutes=15)


# --- registration -------------------------------------------------------------------------------


def _require_admin_of(actor, spaces: Iterable[Space]) -> None:
    user = access.user_of(actor)
    if user is None or isinstance(actor, ApiToken):
        raise Forbidden("Agents are registered by people, signed in.")
    for space in spaces:
        if not access.can_admin(user, space):
            raise Forbidden(f"Only admins of {space.name} can register or change its agents.")


def _clean_registration(
    *,
    name: str,
    purpose: str,
    accountable: User | None,
    spaces: list[Space],
    path_globs: Iterable[str] | None,
    allowed_tools: Iterable[str] | None,
    allowed_scopes: Iterable[str] | None,
    escalation_user: User | None,
    escalation_team: Team | None,
    rate_limit: str,
) -> dict[str, Any]:
    errors: dict[str, list[str]] = {}
    name = strip_invisible(name or "").strip()
    if not name or len(name) > 100:
        errors["name"] = ["A name of at most 100 characters is required."]
    purpose = (purpose or "").strip()
    if len(purpose) > MAX_RATIONALE:
        errors["purpose"] = [f"At most {MAX_RATIONALE:,} characters."]
    if not spaces:
        errors["spaces"] = ["Choose at least one space."]
    if accountable is None or not accountable.is_active:
        errors["accountable"] = ["Name the active person who answers for this agent."]
    else:
        for space in spaces:
            if not Membership.objects.filter(user=accountable, space=space).exists():
                errors["accountable"] = [f"{accountable} is not a member of {space.name}."]
    globs: list[str] = []
    try:
        raw = [g for g in (path_globs or []) if isinstance(g, str) and g.strip()]
        if len(raw) > 50:
            errors["path_globs"] = ["At most 50 path globs."]
        globs = anchors_mod.clean_anchors(raw)[0]
    except anchors_mod.AnchorRefused as exc:
        errors["path_globs"] = [str(exc)]
    tools = list(dict.fromkeys(allowed_tools if allowed_tools is not None else DEFAULT_TOOLS))
    unknown = [t for t in tools if t not in MCP_TOOLS]
    if unknown:
        errors["allowed_tools"] = [f"Unknown MCP tool {unknown[0]!r}."]
    scopes = list(dict.fromkeys(allowed_scopes if allowed_scopes is not None else DEFAULT_SCOPES))
    unknown = [s for s in scopes if s not in REST_SCOPES]
    if unknown:
        errors["allowed_scopes"] = [f"Unknown REST scope {unknown[0]!r}."]
    if escalation_user is not None and escalation_team is not None:
        errors["escalation_team"] = ["Escalate to a person or a team, not both."]
    rate_limit = (rate_limit or "").strip()
    if rate_limit:
        try:
            SimpleRateThrottle.parse_rate(None, rate_limit)
        except (ValueError, KeyError, IndexError):
            errors["rate_limit"] = ['Use a rate like "120/minute" (second, minute, hour, day).']
    if errors:
        raise InvalidInput("The agent is not valid.", details=errors)
    return {
        "name": name,
        "purpose": purpose,
        "accountable": accountable,
        "path_globs": globs,
        "allowed_tools": tools,
        "allowed_scopes": scopes,
        "escalation_user": escalation_user,
        "escalation_team": escalation_team,
        "rate_limit": rate_limit,
    }


def _unique_slug(name: str) -> str:
    base = (slugify(name) or "agent")[:50]
    slug, n = base, 1
    while Agent.objects.filter(slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


@transaction.atomic
def agent_create(
    *,
    actor,
    name: str,
    accountable: User | None,
    spaces: Iterable[Space],
    purpose: str = "",
    path_globs: Iterable[str] | None = None,
    allowed_tools: Iterable[str] | None = None,
    allowed_scopes: Iterable[str] | None = None,
    escalation_user: User | None = None,
    escalation_team: Team | None = None,
    rate_limit: str = "",
) -> Agent:
    """Register an agent (admins of each of its spaces)."""
    spaces = list(spaces)
    _require_admin_of(actor, spaces)
    fields = _clean_registration(
        name=name,
        purpose=purpose,
        accountable=accountable,
        spaces=spaces,
        path_globs=path_globs,
        allowed_tools=allowed_tools,
        allowed_scopes=allowed_scopes,
        escalation_user=escalation_user,
        escalation_team=escalation_team,
        rate_limit=rate_limit,
    )
    agent = Agent.objects.create(
        slug=_unique_slug(fields["name"]), created_by=access.user_of(actor), **fields
    )
    agent.spaces.set(spaces)
    return agent


@transaction.atomic
def agent_update(*, agent: Agent, actor, spaces: Iterable[Space], **changes) -> Agent:
    """Change an agent's declaration; its tokens follow its spaces at once."""
    spaces = list(spaces)
    agent = Agent.objects.select_for_update().get(pk=agent.pk)
    _require_admin_of(actor, list(agent.spaces.all()) + spaces)
    current = {
        "name": agent.name,
        "purpose": agent.purpose,
        "accountable": agent.accountable,
        "path_globs": agent.path_globs,
        "allowed_tools": agent.allowed_tools,
        "allowed_scopes": agent.allowed_scopes,
        "escalation_user": agent.escalation_user,
        "escalation_team": agent.escalation_team,
        "rate_limit": agent.rate_limit,
    }
    unknown = set(changes) - set(current)
    if unknown:
        raise InvalidInput(f"These fields cannot be changed: {', '.join(sorted(unknown))}.")
    fields = _clean_registration(spaces=spaces, **{**current, **changes})
    for name, value in fields.items():
        setattr(agent, name, value)
    agent.updated_at = timezone.now()
    agent.save()
    agent.spaces.set(spaces)
    for token in agent.tokens.all():
        token.spaces.set(spaces)
    if agent.tokens.exclude(user=agent.accountable).exists():
        agent.tokens.update(user=agent.accountable)
    return agent


@transaction.atomic
def agent_set_disabled(*, agent: Agent, actor, disabled: bool) -> Agent:
    _require_admin_of(actor, agent.spaces.all())
    agent.disabled_at = timezone.now() if disabled else None
    Agent.objects.filter(pk=agent.pk).update(disabled_at=agent.disabled_at)
    return agent


@transaction.atomic
def agent_token_create(
    *, agent: Agent, actor, name: str, expires_at: dt.datetime | None = None
) -> tuple[ApiToken, str]:
    """A token for the agent: its accountable person's rights narrowed to the agent's spaces,
    read-only. Shown once."""
    from apps.accounts.services import token_create

    _require_admin_of(actor, agent.spaces.all())
    token, plain = token_create(
        user=agent.accountable,
        name=name,
        scope=ApiToken.Scope.READ,
        spaces=list(agent.spaces.all()),
        expires_at=expires_at,
    )
    ApiToken.objects.filter(pk=token.pk).update(agent=agent)
    token.agent = agent
    return token, plain


@transaction.atomic
def agent_token_revoke(*, agent: Agent, token: ApiToken, actor) -> ApiToken:
    """Revoke one of the agent's tokens at once (idempotent)."""
    if token.agent_id != agent.pk:
        raise NotFound("Token not found.")
    _require_admin_of(actor, agent.spaces.all())
    if token.revoked_at is None:
        ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=timezone.now()
        )
        token.refresh_from_db()
        audit_log(
            kind=AuditEvent.Kind.TOKEN_REVOKED,
            actor=actor,
            token=token,
            message=f"Token {token.name!r} ({token.prefix}…) of agent {agent.slug} revoked",
        )
    return token


# --- proposals ----------------------------------------------------------------------------------


def _agent_for(token) -> Agent:
    agent = agent_of(token)
    if agent is None:
        raise Forbidden(
            "Proposals come from registered agents: use a token issued on the agent's page."
        )
    return agent


def _space_for(agent: Agent, token, slug: str | None) -> Space:
    spaces = {s.slug: s for s in agent.spaces.all()}
    if not slug:
        if len(spaces) == 1:
            return next(iter(spaces.values()))
        raise InvalidInput(
            "Name the space (its slug): this agent works in several.",
            details={"space": [f"One of {', '.join(sorted(spaces))}."]},
        )
    if not isinstance(slug, str) or slug not in spaces:
        _refuse(
            agent,
            token,
            f"{agent.name} is not registered for the space {str(slug)[:60]!r}.",
            {"spaces": [str(slug)[:60]], "allowed_spaces": sorted(spaces)},
        )
    return spaces[slug]


def _check_paths(agent: Agent, token, anchors: Iterable[str], *, space: Space) -> None:
    outside = [a for a in anchors if not _glob_inside(agent, a)]
    if outside:
        _refuse(
            agent,
            token,
            f"{agent.name} works on {', '.join(agent.path_globs)}; "
            f"{outside[0]!r} is outside its paths.",
            {"paths": outside[:20], "allowed_paths": list(agent.path_globs)},
            space=space,
        )


def _literal_prefix(glob: str) -> str:
    glob = anchors_mod.normalise_path(glob)
    for i, ch in enumerate(glob):
        if ch in "*?[":
            return glob[:i]
    return glob


def _glob_inside(agent: Agent, anchor: str) -> bool:
    """Whether an anchor glob lies inside the agent's paths: a concrete path must match; a glob
    must start inside one of them."""
    if not agent.path_globs:
        return True
    if path_allowed(agent, anchor):
        return True
    prefix = _literal_prefix(anchor)
    return bool(prefix) and path_allowed(agent, prefix.rstrip("/") + "/x")


def overlaps(glob_a: str, glob_b: str) -> bool:
    """Whether two path globs can match a common path (by their literal prefixes)."""
    a, b = _literal_prefix(glob_a), _literal_prefix(glob_b)
    return a.startswith(b) or b.startswith(a)


def _text(value, *, field: str, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be text.", details={field: ["Must be text."]})
    if len(value) > limit:
        raise InvalidInput(
            f"{field} is limited to {limit:,} characters; this one has {len(value):,}.",
            details={field: [f"At most {limit:,} characters."]},
        )
    if "\x00" in value:
        raise InvalidInput(f"{field} contains a NUL character.", details={field: ["NUL."]})
    return value.strip()


def _visible_record(agent: Agent, token, *, key: str, space: Space) -> Record:
    if not isinstance(key, str) or not key.strip() or len(key) > 40:
        raise InvalidInput("Give the record's key, e.g. DEC-12.", details={"key": ["Invalid."]})
    record = (
        Record.objects.visible_to(token)
        .filter(space=space, key__iexact=key.strip(), archived_at__isnull=True)
        .select_related("space")
        .first()
    )
    if record is None:
        raise NotFound(
            f"No record {key.strip().upper()!r} in {space.slug} is visible to this agent."
        )
    _check_paths(agent, token, record.anchors, space=space)
    return record


def _base_version(value, record: Record) -> int:
    if value is None:
        return record.version
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInput(
            "base_version must be the record version you read (a positive integer).",
            details={"base_version": ["Not a positive integer."]},
        )
    if value > record.version:
        raise InvalidInput(
            f"{record.key} has no version {value} (it is at version {record.version}).",
            details={"base_version": ["Unknown version."]},
        )
    return value


def _base_fields(record: Record, version: int, names: Iterable[str]) -> dict[str, Any]:
    """The named fields as they were at `version` (from its revision), for the owner's diff."""
    if version == record.version:
        snap = record_services.snapshot(record)
    else:
        revision = record.revisions.filter(version=version).order_by("-number").first()
        snap = revision.snapshot if revision else {}
    return {name: snap.get(name) for name in names}


def _scan(fields: dict[str, Any]) -> None:
    """Proposals pass the secret scan like any text, with no override."""
    texts = {k: v for k, v in fields.items() if isinstance(v, str) and v}
    for name in ("tags", "anchors"):
        if isinstance(fields.get(name), list):
            texts[name] = "\n".join(v for v in fields[name] if isinstance(v, str))
    secret_scan.refuse_secrets(texts, what="proposal's")


def _normalised(fields: dict[str, Any], *, space: Space) -> dict[str, Any]:
    cleaned = record_services._normalise(fields, space=space)
    for name in ("tags", "anchors"):
        if name in cleaned:
            cleaned[name] = list(cleaned[name])
    return cleaned


def proposal_new_record(
    *,
    token,
    space: str | None,
    kind: str,
    title: str,
    summary: str = "",
    body: str = "",
    tags: Iterable[str] | None = None,
    anchors: Iterable[str] | None = None,
    rationale: str = "",
) -> Proposal:
    """An agent proposes a new record; accepted, it becomes a draft. (Not one transaction: a
    refusal's audit entry must stay; the proposal itself is one insert.)"""
    agent = _agent_for(token)
    target = _space_for(agent, token, space)
    if kind not in Record.Kind.values:
        raise InvalidInput(
            f"Unknown kind {kind!r}; use one of {', '.join(Record.Kind.values)}.",
            details={"kind": ["Invalid kind."]},
        )
    fields = _normalised(
        {"title": title, "summary": summary, "body": body, "tags": tags, "anchors": anchors},
        space=target,
    )
    rationale = _text(rationale, field="rationale", limit=MAX_RATIONALE)
    _scan({**fields, "rationale": rationale})
    _check_paths(agent, token, fields.get("anchors") or [], space=target)
    return _announced(
        Proposal.objects.create(
            agent=agent,
            token=token,
            space=target,
            kind=Proposal.Kind.NEW,
            fields={"kind": kind, **fields},
            rationale=rationale,
        )
    )


def proposal_update(
    *,
    token,
    key: str,
    changes: dict[str, Any],
    space: str | None = None,
    base_version: int | None = None,
    rationale: str = "",
) -> Proposal:
    """An agent proposes a change to a record, as a diff against the version it read."""
    agent = _agent_for(token)
    target = _space_for(agent, token, space)
    record = _visible_record(agent, token, key=key, space=target)
    if not isinstance(changes, dict) or not changes:
        raise InvalidInput(
            f"Give the changed fields ({', '.join(PROPOSABLE_FIELDS)}).",
            details={"changes": ["Empty or not an object."]},
        )
    unknown = sorted(set(changes) - set(PROPOSABLE_FIELDS))
    if unknown:
        raise InvalidInput(
            f"Agents can propose changes to {', '.join(PROPOSABLE_FIELDS)} only, not "
            f"{', '.join(unknown)}.",
            details={name: ["Not proposable."] for name in unknown},
        )
    version = _base_version(base_version, record)
    fields = _normalised(dict(changes), space=target)
    rationale = _text(rationale, field="rationale", limit=MAX_RATIONALE)
    _scan({**fields, "rationale": rationale})
    if "anchors" in fields:
        _check_paths(agent, token, fields["anchors"], space=target)
    base = _base_fields(record, version, fields)
    if all(base.get(name) == value for name, value in fields.items()):
        raise InvalidInput(
            f"The proposal changes nothing in {record.key} version {version}.",
            details={"changes": ["Same as the record."]},
        )
    return _announced(
        Proposal.objects.create(
            agent=agent,
            token=token,
            space=target,
            kind=Proposal.Kind.UPDATE,
            record=record,
            base_version=version,
            fields=fields,
            base_fields=base,
            rationale=rationale,
        )
    )


def proposal_flag_outdated(
    *,
    token,
    key: str,
    evidence: str = "",
    evidence_url: str = "",
    space: str | None = None,
    base_version: int | None = None,
) -> Proposal:
    """An agent says a record no longer holds, with a link or text as evidence."""
    agent = _agent_for(token)
    target = _space_for(agent, token, space)
    record = _visible_record(agent, token, key=key, space=target)
    evidence = _text(evidence, field="evidence", limit=MAX_EVIDENCE)
    evidence_url = _text(evidence_url, field="evidence_url", limit=500)
    if evidence_url and not evidence_url.startswith(("https://", "http://")):
        raise InvalidInput(
            "evidence_url must be an http(s) link.", details={"evidence_url": ["Not a link."]}
        )
    if not evidence and not evidence_url:
        raise InvalidInput(
            "Give the evidence: a link (evidence_url) or text (evidence).",
            details={"evidence": ["Required."]},
        )
    _scan({"evidence": evidence, "evidence_url": evidence_url})
    version = _base_version(base_version, record)
    return _announced(
        Proposal.objects.create(
            agent=agent,
            token=token,
            space=target,
            kind=Proposal.Kind.OUTDATED,
            record=record,
            base_version=version,
            rationale=evidence,
            evidence_url=evidence_url,
        )
    )


# --- review -------------------------------------------------------------------------------------


def can_review(user, proposal: Proposal) -> bool:
    """A person (not a token) who may edit the space and owns the record (or is in its owning
    team), or any admin of the space; new records: the space's editors."""
    if user is None or isinstance(user, ApiToken) or not getattr(user, "is_authenticated", False):
        return False
    if not access.can_edit(user, proposal.space):
        return False
    if access.can_admin(user, proposal.space) or proposal.record_id is None:
        return True
    record = proposal.record
    if record.owner_user_id is not None:
        return record.owner_user_id == user.pk
    if record.owner_team_id is not None:
        return record.owner_team.members.filter(pk=user.pk).exists()
    return False


def _locked_pending(proposal: Proposal, actor) -> Proposal:
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


def _credit(proposal: Proposal, actor, *, edited: bool) -> str:
    how = "edited and accepted" if edited else "accepted"
    return (
        f"Proposed by agent {proposal.agent.name} (proposal #{proposal.pk}), "
        f"{how} by {access.user_of(actor)}"
    )[:300]


@transaction.atomic
def proposal_accept(
    *,
    proposal: Proposal,
    actor,
    edits: dict[str, Any] | None = None,
    seen_version: int | None = None,
    note: str = "",
) -> Proposal:
    """Apply a proposal through the record services, crediting the agent and the approver.

    A change proposed against an older version than the record's current one is a conflict: it
    is applied only when the reviewer saw the current version (`seen_version`) and, having
    compared, accepts (usually after editing)."""
    current = _locked_pending(proposal, actor)
    note = _text(note, field="note", limit=MAX_RATIONALE)
    edited = bool(edits)
    now = timezone.now()
    if current.kind == Proposal.Kind.NEW:
        fields = {**current.fields, **(edits or {})}
        kind = fields.pop("kind", Record.Kind.DECISION)
        record = record_services.record_create(
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
            message=_credit(current, actor, edited=edited),
        )
    else:
        record = Record.objects.get(pk=current.record_id)
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
        record = record_services.record_update(
            record=record,
            actor=actor,
            expected_version=expected,
            changes=changes,
            message=_credit(current, actor, edited=edited),
            now=now,
        )
    revision = record.revisions.order_by("-number").values_list("number", flat=True).first()
    current.status = Proposal.Status.ACCEPTED
    current.reviewer = access.user_of(actor)
    current.reviewed_at = now
    current.review_note = note
    current.edited = edited
    current.result_record = record
    current.result_revision = revision
    current.save()
    return current


@transaction.atomic
def proposal_reject(*, proposal: Proposal, actor, note: str) -> Proposal:
    """Reject with a note the agent reads back (required)."""
    current = _locked_pending(proposal, actor)
    note = _text(note, field="note", limit=MAX_RATIONALE)
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


# --- escalation ---------------------------------------------------------------------------------


def escalation_contact(record: Record, agent: Agent | None) -> tuple[str, list[User]]:
    """Who answers for a guardrail: its owner (a person or a team), else the agent's escalation
    contact, else the agent's accountable person. (label, active people with an email)."""
    if record.owner_user_id and record.owner_user.is_active:
        return str(record.owner_user), [record.owner_user]
    if record.owner_team_id:
        people = [u for u in record.owner_team.members.all() if u.is_active]
        if people:
            return f"team {record.owner_team}", people
    if agent is not None:
        if agent.escalation_user_id and agent.escalation_user.is_active:
            return str(agent.escalation_user), [agent.escalation_user]
        if agent.escalation_team_id:
            people = [u for u in agent.escalation_team.members.all() if u.is_active]
            if people:
                return f"team {agent.escalation_team}", people
        return str(agent.accountable), [agent.accountable]
    return "", []


def _dedupe_key(idempotency_key: str | None, *, record: Record, action: str, why: str, now) -> str:
    if idempotency_key:
        return "key:" + hashlib.sha256(idempotency_key.encode()).hexdigest()[:64]
    window = int(now.timestamp() // ESCALATION_WINDOW.total_seconds())
    raw = f"{record.pk}\n{' '.join(action.split())}\n{' '.join(why.split())}\n{window}"
    return "auto:" + hashlib.sha256(raw.encode()).hexdigest()[:64]


def escalation_create(
    *,
    token,
    guardrail_key: str,
    action: str,
    why: str,
    space: str | None = None,
    idempotency_key: str | None = None,
) -> tuple[Escalation, bool]:
    """Record an escalation and (the first time only) send its email after commit. The same
    call retried — same idempotency key, or same guardrail, action and reason within
    ESCALATION_WINDOW — returns the first escalation and sends nothing more."""
    agent = _agent_for(token)
    target = _space_for(agent, token, space)
    action = _text(action, field="action", limit=MAX_ACTION)
    why = _text(why, field="why", limit=MAX_ACTION)
    if not action or not why:
        raise InvalidInput(
            "Say what you were about to do (action) and why you are asking (why).",
            details={"action" if not action else "why": ["Required."]},
        )
    if idempotency_key is not None and (
        not isinstance(idempotency_key, str) or not 0 < len(idempotency_key) <= 200
    ):
        raise InvalidInput(
            "idempotency_key must be text of at most 200 characters.",
            details={"idempotency_key": ["Invalid."]},
        )
    secret_scan.refuse_secrets({"action": action, "why": why}, what="escalation's")
    record = _visible_record(agent, token, key=guardrail_key, space=target)
    if record.kind not in (Record.Kind.GUARDRAIL, Record.Kind.CONSTRAINT):
        raise InvalidInput(
            f"{record.key} is a {record.kind}; escalate on a guardrail or constraint.",
            details={"guardrail_key": ["Not a guardrail."]},
        )
    now = timezone.now()
    key = _dedupe_key(idempotency_key, record=record, action=action, why=why, now=now)
    existing = Escalation.objects.filter(agent=agent, dedupe_key=key).first()
    if existing is not None:
        return existing, False
    label, people = escalation_contact(record, agent)
    try:
        with transaction.atomic():
            escalation = Escalation.objects.create(
                agent=agent,
                guardrail=record,
                action=action,
                reason=why,
                dedupe_key=key,
                contact_label=label,
                recipients=[u.email for u in people if u.email],
                created_at=now,
            )
            from apps.agents import tasks

            transaction.on_commit(lambda: tasks.send_escalation.delay(escalation.pk))
            _chat_escalation(escalation)
    except IntegrityError:
        # The same call, retried at the same moment: the other one created it.
        return Escalation.objects.get(agent=agent, dedupe_key=key), False
    return escalation, True


def _announced(proposal: Proposal) -> Proposal:
    """Tell the space's chat channel (if it has one) that a proposal waits for its owner; the
    owner's digest carries it too (apps.reminders)."""
    from apps.chat import services as chat

    record = proposal.record
    what = {
        Proposal.Kind.NEW: f"a new {proposal.fields.get('kind', 'record')}: "
        f"{proposal.fields.get('title', '')}",
        Proposal.Kind.UPDATE: f"a change to {record.key if record else ''}",
        Proposal.Kind.OUTDATED: f"that {record.key if record else ''} no longer holds",
    }[proposal.kind]
    owner = record.owner_user if record is not None else None
    chat.notify(
        space=proposal.space,
        title=f"Agent {proposal.agent.name} proposes {what}"[:150],
        text=proposal.rationale or proposal.evidence_url or "",
        key=f"proposal-{proposal.pk}",
        user=owner,
        links=[("Review it", absolute_url(reverse("agents:proposal_review", args=[proposal.pk])))],
    )
    return proposal


def _chat_escalation(escalation: Escalation) -> None:
    """An escalation also goes to the guardrail's space channel at once (the email goes to its
    contact); one notice per escalation, whatever the retries."""
    from apps.chat import services as chat

    record = escalation.guardrail
    chat.notify(
        space=record.space,
        title=f"Agent {escalation.agent.name} escalates on {record.key}"[:150],
        text=f"About to: {escalation.action}\nWhy: {escalation.reason}",
        key=f"escalation-{escalation.pk}",
        user=record.owner_user,
        links=[("Open the guardrail", absolute_url(record.get_absolute_url()))],
    )


def escalation_claim(*, escalation_id: int) -> Escalation | None:
    """Claim the right to send (a conditional UPDATE): one sender, however often the task runs."""
    claimed = Escalation.objects.filter(pk=escalation_id, notified_at__isnull=True).update(
        notified_at=timezone.now()
    )
    if not claimed:
        return None
    return (
        Escalation.objects.select_related("agent", "guardrail__space")
        .filter(pk=escalation_id)
        .first()
    )


def escalation_unclaim(*, escalation_id: int) -> None:
    """Sending failed: let the retry claim it again."""
    Escalation.objects.filter(pk=escalation_id).update(notified_at=None)
