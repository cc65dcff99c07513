"""The agent tools of the MCP server (apps.mcp_server.server): thin calls into the services,
each returning (markdown, None) as the server's `_run` expects."""

from __future__ import annotations

from typing import Any

from django.urls import reverse

from apps.accounts.models import ApiToken
from apps.agents import services
from apps.agents.models import Proposal
from apps.agents.services import escalation_contact
from apps.records.models import Record


def _receipt(proposal: Proposal) -> str:
    path = reverse("api:proposal_detail", args=[proposal.pk])
    target = (
        f" on {proposal.record.key} (version {proposal.base_version})"
        if proposal.record is not None
        else ""
    )
    return (
        f"Proposal #{proposal.pk} ({proposal.get_kind_display().lower()}{target}) is waiting for "
        f"review by a person. Nothing changes until they accept it. Read back its status and "
        f"any reviewer note at GET {path}."
    )


def propose_record(token: ApiToken, **kwargs: Any) -> tuple[str, None]:
    return _receipt(services.proposal_new_record(token=token, **kwargs)), None


def propose_update(token: ApiToken, **kwargs: Any) -> tuple[str, None]:
    return _receipt(services.proposal_update(token=token, **kwargs)), None


def flag_outdated(token: ApiToken, **kwargs: Any) -> tuple[str, None]:
    return _receipt(services.proposal_flag_outdated(token=token, **kwargs)), None


def escalate(token: ApiToken, **kwargs: Any) -> tuple[str, None]:
    escalation, created = services.escalation_create(token=token, **kwargs)
    who = escalation.contact_label or "nobody (no contact with an email)"
    if created:
        return f"Escalation #{escalation.pk}: {who} is notified by email now. Wait for them.", None
    return (
        f"Escalation #{escalation.pk} was already sent to {who}; not sent again. Wait for them.",
        None,
    )


def escalation_contacts_text(principal: object, bundle: dict[str, Any]) -> str:
    """The lines guardrails_for_paths adds: each listed guardrail's escalation contact."""
    from apps.agents.scope import agent_of

    ids = [item.get("id") for item in bundle.get("items", []) if item.get("id")]
    if not ids:
        return ""
    agent = agent_of(principal)
    records = (
        Record.objects.filter(pk__in=ids, kind=Record.Kind.GUARDRAIL)
        .select_related("owner_user", "owner_team")
        .order_by("number")
    )
    lines = []
    for record in records:
        label, _people = escalation_contact(record, agent)
        if label:
            lines.append(f"- {record.key}: {label}")
    if not lines:
        return ""
    return (
        "\n\nEscalation contacts (call `escalate` with the guardrail key before crossing one):\n"
        + "\n".join(lines)
        + "\n"
    )
