"""Reads for the Agents pages, the proposal review queue and the owners' digest."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet

from apps.accounts import access
from apps.accounts.models import ApiToken, Membership, Space, User
from apps.agents.models import Agent, AgentEvent, Escalation, Proposal
from apps.agents.services import can_review, overlaps
from apps.records.models import Record

RECENT = 20


def agents_visible(*, user: User, space: Space | None = None) -> QuerySet[Agent]:
    """Agents registered in spaces the user can see (all for site admins), or in one space."""
    qs = Agent.objects.select_related(
        "accountable", "escalation_user", "escalation_team"
    ).prefetch_related(Prefetch("spaces", queryset=Space.objects.order_by("name")))
    if space is not None:
        qs = qs.filter(spaces=space)
    if not user.is_superuser:
        qs = qs.filter(spaces__in=Space.objects.visible_to(user))
    return qs.distinct().order_by("name")


def agent_for_page(*, user: User, slug: str) -> Agent | None:
    return agents_visible(user=user).filter(slug=slug).first()


def can_manage(user: User, agent: Agent) -> bool:
    return bool(user.is_superuser) or all(
        access.can_admin(user, space) for space in agent.spaces.all()
    )


def governing_records(agent: Agent, *, user: User) -> list[Record]:
    """Active guardrails and constraints in the agent's spaces anchored inside its paths (all
    of them when it declares no paths), with their freshness, for a viewer who may see them."""
    qs = (
        Record.objects.visible_to(user)
        .active()
        .with_freshness()
        .filter(
            space__in=agent.spaces.all(),
            kind__in=(Record.Kind.GUARDRAIL, Record.Kind.CONSTRAINT),
        )
        .exclude(status__in=(Record.Status.SUPERSEDED, Record.Status.REJECTED))
        .select_related("space", "owner_user", "owner_team")
        .order_by("kind", "space__name", "number")
    )
    out = []
    for record in qs[:500]:
        if not agent.path_globs or any(
            overlaps(a, g) for a in record.anchors for g in agent.path_globs
        ):
            out.append(record)
    return out


def activity(agent: Agent) -> dict:
    """Bundles fetched (context requests by its tokens), gaps, proposals, refusals."""
    from apps.retrieval.models import ContextRequest

    token_ids = list(ApiToken.objects.filter(agent=agent).values_list("id", flat=True))
    requests = ContextRequest.objects.filter(token_id__in=token_ids) if token_ids else None
    bundles = (
        list(requests.select_related("bundle").order_by("-created_at")[:RECENT])
        if requests is not None
        else []
    )
    events = AgentEvent.objects.filter(agent=agent)
    counts = _count_by(events, "kind")
    proposals = _count_by(Proposal.objects.filter(agent=agent), "status")
    return {
        "bundle_count": requests.count() if requests is not None else 0,
        "bundles": bundles,
        "gap_count": counts.get(AgentEvent.Kind.GAP, 0),
        "refusal_count": counts.get(AgentEvent.Kind.REFUSED, 0),
        "refusals": list(events.filter(kind=AgentEvent.Kind.REFUSED)[:RECENT]),
        "proposal_counts": proposals,
        "proposal_count": sum(proposals.values()),
        "proposals": list(
            Proposal.objects.filter(agent=agent).select_related("record", "space")[:RECENT]
        ),
        "escalations": list(
            Escalation.objects.filter(agent=agent).select_related("guardrail__space")[:RECENT]
        ),
    }


def _count_by(rows: QuerySet, field: str) -> dict[Any, int]:
    """How many rows have each value of `field` (one GROUP BY query)."""
    return dict(rows.values(field).annotate(n=Count("id")).values_list(field, "n"))


def list_rows(agents: Iterable[Agent]) -> list[dict]:
    """One row per agent for the list pages, with its activity counts (constant queries)."""
    from apps.retrieval.models import ContextRequest

    agents = list(agents)
    ids = [a.pk for a in agents]
    tokens = defaultdict(list)
    for token_id, agent_id in ApiToken.objects.filter(agent_id__in=ids).values_list(
        "id", "agent_id"
    ):
        tokens[agent_id].append(token_id)
    by_token = _count_by(
        ContextRequest.objects.filter(token_id__in=[t for ts in tokens.values() for t in ts]),
        "token_id",
    )
    gaps = _count_by(
        AgentEvent.objects.filter(agent_id__in=ids, kind=AgentEvent.Kind.GAP), "agent_id"
    )
    proposals = _count_by(Proposal.objects.filter(agent_id__in=ids), "agent_id")
    pending = _count_by(
        Proposal.objects.filter(agent_id__in=ids, status=Proposal.Status.PENDING), "agent_id"
    )
    return [
        {
            "agent": a,
            "bundles": sum(by_token.get(t, 0) for t in tokens[a.pk]),
            "gaps": gaps.get(a.pk, 0),
            "proposals": proposals.get(a.pk, 0),
            "pending": pending.get(a.pk, 0),
        }
        for a in agents
    ]


# --- review ---------------------------------------------------------------------------------------


def _pending_for(user: User) -> QuerySet[Proposal]:
    """Pending proposals in spaces where the user may edit: the candidates to review."""
    editable = Membership.objects.filter(
        user=user, role__in=(Membership.Role.EDITOR, Membership.Role.ADMIN)
    ).values("space_id")
    qs = Proposal.objects.filter(status=Proposal.Status.PENDING)
    if not user.is_superuser:
        qs = qs.filter(space_id__in=editable)
    return qs.select_related(
        "agent", "space", "record__owner_user", "record__owner_team", "record__space"
    ).order_by("created_at", "id")


def proposals_to_review(*, user: User, limit: int = 100, primary: bool = False) -> list[Proposal]:
    """The proposals waiting for this person: on records they (or their team) own; new records
    and unowned records in spaces they administer. Not `primary` (the review pages): also
    anything in spaces they administer and new records in spaces they edit."""
    team_ids = set(user.teams.values_list("id", flat=True))
    admin_of = set(
        Membership.objects.filter(user=user, role=Membership.Role.ADMIN).values_list(
            "space_id", flat=True
        )
    )
    out = []
    for proposal in _pending_for(user)[: limit * 5]:
        record = proposal.record
        owned = record is not None and (
            record.owner_user_id == user.pk or record.owner_team_id in team_ids
        )
        unowned = record is None or (record.owner_user_id is None and record.owner_team_id is None)
        if (
            owned
            or (unowned and proposal.space_id in admin_of)
            or (not primary and (proposal.space_id in admin_of or record is None))
        ):
            out.append(proposal)
        if len(out) >= limit:
            break
    return out


def users_with_pending_proposals() -> list[int]:
    """Ids of people with proposals to review first-hand (for the digest plan): owners of the
    records (and members of owning teams), and space admins for new and unowned records."""
    pending = Proposal.objects.filter(status=Proposal.Status.PENDING)
    people: set[int] = set(
        pending.filter(record__owner_user__isnull=False).values_list(
            "record__owner_user_id", flat=True
        )
    )
    people |= set(
        pending.filter(record__owner_team__isnull=False)
        .exclude(record__owner_team__members=None)
        .values_list("record__owner_team__members", flat=True)
    )
    unowned = set(
        pending.filter(
            Q(record__isnull=True)
            | Q(record__owner_user__isnull=True, record__owner_team__isnull=True)
        ).values_list("space_id", flat=True)
    )
    if unowned:
        people |= set(
            Membership.objects.filter(space_id__in=unowned, role=Membership.Role.ADMIN).values_list(
                "user_id", flat=True
            )
        )
    if not people:
        return []
    return sorted(
        User.objects.filter(pk__in=people, is_active=True)
        .exclude(digest_frequency=User.DigestFrequency.OFF)
        .values_list("id", flat=True)
    )


def proposal_for_review(*, user: User, pk: int) -> Proposal | None:
    proposal = (
        Proposal.objects.select_related("agent", "space", "record__space", "reviewer")
        .filter(pk=pk)
        .first()
    )
    if proposal is None or not access.can_view(user, proposal.space):
        return None
    return proposal


def diff_rows(proposal: Proposal) -> list[dict]:
    """Per proposed field: what the agent saw, what it proposes, and (on a conflict) what the
    record says now."""
    current: dict[str, Any] = {}
    if proposal.record is not None:
        from apps.records.services import snapshot

        current = snapshot(proposal.record)
    rows = []
    fields = proposal.fields
    for name, value in fields.items():
        if name == "kind":
            continue
        base = proposal.base_fields.get(name) if proposal.base_fields else None
        now = current.get(name) if current else None
        rows.append(
            {
                "name": name,
                "base": _show(base),
                "proposed": _show(value),
                "current": _show(now),
                "changed_since": proposal.is_conflict and now != base,
            }
        )
    if proposal.is_conflict:
        # What else changed since the version the agent read (it did not propose these).
        then = _snapshot_at(proposal.record, proposal.base_version)
        for name in ("title", "summary", "body", "status", "tags", "anchors"):
            if name not in fields and name in then and then.get(name) != current.get(name):
                rows.append(
                    {
                        "name": name,
                        "base": _show(then.get(name)),
                        "proposed": "(not part of the proposal)",
                        "current": _show(current.get(name)),
                        "changed_since": True,
                    }
                )
    return rows


def _snapshot_at(record: Record | None, version: int | None) -> dict[str, Any]:
    """The record as it was at `version` (its revision's snapshot), or nothing."""
    if record is None or version is None:
        return {}
    revision = record.revisions.filter(version=version).first()
    return revision.snapshot if revision else {}


def _show(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value)


def own_proposals(*, token: object) -> QuerySet[Proposal]:
    """An agent's proposals, read back through any of its tokens."""
    if not isinstance(token, ApiToken) or token.agent_id is None:
        return Proposal.objects.none()
    return (
        Proposal.objects.filter(agent_id=token.agent_id)
        .select_related("record", "space", "result_record", "reviewer")
        .order_by("-created_at", "-id")
    )


__all__ = ["Q", "can_review"]
