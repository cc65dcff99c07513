"""An agent proposes a new record, a change to a record, or that a record no longer holds."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.urls import reverse

from apps.accounts.models import ApiToken, Space
from apps.agents.models import Agent, Proposal
from apps.agents.services.checks import (
    MAX_RATIONALE,
    agent_for,
    check_paths,
    clean_text,
    space_for,
    visible_record,
)
from apps.core import secret_scan
from apps.core.errors import InvalidInput
from apps.core.links import absolute_url
from apps.records import services as record_services
from apps.records.models import Record

MAX_EVIDENCE = 5_000
# Fields an agent may propose to change on an existing record.
PROPOSABLE_FIELDS = ("title", "summary", "body", "tags", "anchors")


def _base_version(value: object, record: Record) -> int:
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
    token: ApiToken,
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
    agent = agent_for(token)
    target = space_for(agent, token, space)
    if kind not in Record.Kind.values:
        raise InvalidInput(
            f"Unknown kind {kind!r}; use one of {', '.join(Record.Kind.values)}.",
            details={"kind": ["Invalid kind."]},
        )
    fields = _normalised(
        {"title": title, "summary": summary, "body": body, "tags": tags, "anchors": anchors},
        space=target,
    )
    rationale = clean_text(rationale, field="rationale", limit=MAX_RATIONALE)
    _scan({**fields, "rationale": rationale})
    check_paths(agent, token, fields.get("anchors") or [], space=target)
    return _proposal_create(
        agent=agent,
        token=token,
        space=target,
        kind=Proposal.Kind.NEW,
        fields={"kind": kind, **fields},
        rationale=rationale,
    )


def proposal_update(
    *,
    token: ApiToken,
    key: str,
    changes: dict[str, Any],
    space: str | None = None,
    base_version: int | None = None,
    rationale: str = "",
) -> Proposal:
    """An agent proposes a change to a record, as a diff against the version it read."""
    agent = agent_for(token)
    target = space_for(agent, token, space)
    record = visible_record(agent, token, key=key, space=target)
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
    rationale = clean_text(rationale, field="rationale", limit=MAX_RATIONALE)
    _scan({**fields, "rationale": rationale})
    if "anchors" in fields:
        check_paths(agent, token, fields["anchors"], space=target)
    base = _base_fields(record, version, fields)
    if all(base.get(name) == value for name, value in fields.items()):
        raise InvalidInput(
            f"The proposal changes nothing in {record.key} version {version}.",
            details={"changes": ["Same as the record."]},
        )
    return _proposal_create(
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


def proposal_flag_outdated(
    *,
    token: ApiToken,
    key: str,
    evidence: str = "",
    evidence_url: str = "",
    space: str | None = None,
    base_version: int | None = None,
) -> Proposal:
    """An agent says a record no longer holds, with a link or text as evidence."""
    agent = agent_for(token)
    target = space_for(agent, token, space)
    record = visible_record(agent, token, key=key, space=target)
    evidence = clean_text(evidence, field="evidence", limit=MAX_EVIDENCE)
    evidence_url = clean_text(evidence_url, field="evidence_url", limit=500)
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
    return _proposal_create(
        agent=agent,
        token=token,
        space=target,
        kind=Proposal.Kind.OUTDATED,
        record=record,
        base_version=version,
        rationale=evidence,
        evidence_url=evidence_url,
    )


def _proposal_create(
    *, agent: Agent, token: ApiToken, space: Space, kind: str, **content: Any
) -> Proposal:
    """Store a proposal and announce it."""
    proposal = Proposal.objects.create(agent=agent, token=token, space=space, kind=kind, **content)
    _announce(proposal)
    return proposal


def _announce(proposal: Proposal) -> None:
    """Tell the space's chat channel (if it has one) that a proposal waits for its owner; the
    owner's digest carries it too (apps.reminders)."""
    from apps.chat import services as chat

    record = proposal.record
    what = {
        Proposal.Kind.NEW: f"a new {proposal.fields.get('kind', 'record')}: "
        f"{proposal.fields.get('title', '')}",
        Proposal.Kind.UPDATE: f"a change to {record.key if record else ''}",
        Proposal.Kind.OUTDATED: f"that {record.key if record else ''} no longer holds",
    }[Proposal.Kind(proposal.kind)]
    owner = record.owner_user if record is not None else None
    chat.notify(
        space=proposal.space,
        title=f"Agent {proposal.agent.name} proposes {what}"[:150],
        text=proposal.rationale or proposal.evidence_url or "",
        key=f"proposal-{proposal.pk}",
        user=owner,
        links=[("Review it", absolute_url(reverse("agents:proposal_review", args=[proposal.pk])))],
    )
