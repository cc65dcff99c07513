"""Registering agents and issuing their tokens (space admins, signed in)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from rest_framework.throttling import SimpleRateThrottle

from apps.accounts import access
from apps.accounts.models import ApiToken, Membership, Space, Team, User
from apps.accounts.services import token_mark_revoked
from apps.agents.models import DEFAULT_SCOPES, DEFAULT_TOOLS, MCP_TOOLS, REST_SCOPES, Agent
from apps.agents.services.checks import MAX_RATIONALE
from apps.core.errors import Forbidden, InvalidInput, NotFound
from apps.core.text import strip_invisible
from apps.records import anchors as anchors_mod


def _require_admin_of(actor: User | ApiToken, spaces: Iterable[Space]) -> None:
    user = access.user_of(actor)
    if user is None or isinstance(actor, ApiToken):
        raise Forbidden("Agents are registered by people, signed in.")
    for space in spaces:
        if not access.can_admin(user, space):
            raise Forbidden(f"Only admins of {space.name} can register or change its agents.")


def _accountable_problem(accountable: User | None, spaces: list[Space]) -> str | None:
    if accountable is None or not accountable.is_active:
        return "Name the active person who answers for this agent."
    outside = [
        space
        for space in spaces
        if not Membership.objects.filter(user=accountable, space=space).exists()
    ]
    return f"{accountable} is not a member of {outside[-1].name}." if outside else None


def _clean_globs(path_globs: Iterable[str] | None, errors: dict[str, list[str]]) -> list[str]:
    raw = [g for g in (path_globs or []) if isinstance(g, str) and g.strip()]
    if len(raw) > 50:
        errors["path_globs"] = ["At most 50 path globs."]
    try:
        return anchors_mod.clean_anchors(raw)[0]
    except anchors_mod.AnchorRefused as exc:
        errors["path_globs"] = [str(exc)]
        return []


def _known(
    chosen: Iterable[str] | None,
    default: Iterable[str],
    allowed: Iterable[str],
    field: str,
    what: str,
    errors: dict[str, list[str]],
) -> list[str]:
    """The chosen names (the default when none were given), once each, in order."""
    names = list(dict.fromkeys(chosen if chosen is not None else default))
    unknown = [n for n in names if n not in allowed]
    if unknown:
        errors[field] = [f"Unknown {what} {unknown[0]!r}."]
    return names


def _clean_rate(rate_limit: str, errors: dict[str, list[str]]) -> str:
    rate_limit = (rate_limit or "").strip()
    if rate_limit:
        try:
            SimpleRateThrottle.parse_rate(None, rate_limit)  # type: ignore[arg-type]  # does not use self
        except (ValueError, KeyError, IndexError):
            errors["rate_limit"] = ['Use a rate like "120/minute" (second, minute, hour, day).']
    return rate_limit


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
    problem = _accountable_problem(accountable, spaces)
    if problem:
        errors["accountable"] = [problem]
    globs = _clean_globs(path_globs, errors)
    tools = _known(allowed_tools, DEFAULT_TOOLS, MCP_TOOLS, "allowed_tools", "MCP tool", errors)
    scopes = _known(
        allowed_scopes, DEFAULT_SCOPES, REST_SCOPES, "allowed_scopes", "REST scope", errors
    )
    if escalation_user is not None and escalation_team is not None:
        errors["escalation_team"] = ["Escalate to a person or a team, not both."]
    rate_limit = _clean_rate(rate_limit, errors)
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
    actor: User | ApiToken,
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
def agent_update(
    *, agent: Agent, actor: User | ApiToken, spaces: Iterable[Space], **changes
) -> Agent:
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
def agent_set_disabled(*, agent: Agent, actor: User | ApiToken, disabled: bool) -> Agent:
    _require_admin_of(actor, agent.spaces.all())
    agent.disabled_at = timezone.now() if disabled else None
    Agent.objects.filter(pk=agent.pk).update(disabled_at=agent.disabled_at)
    return agent


@transaction.atomic
def agent_token_create(
    *, agent: Agent, actor: User | ApiToken, name: str, expires_at: dt.datetime | None = None
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
def agent_token_revoke(*, agent: Agent, token: ApiToken, actor: User | ApiToken) -> ApiToken:
    """Revoke one of the agent's tokens at once (idempotent)."""
    if token.agent_id != agent.pk:
        raise NotFound("Token not found.")
    _require_admin_of(actor, agent.spaces.all())
    return token_mark_revoked(
        token=token,
        actor=actor,
        message=f"Token {token.name!r} ({token.prefix}…) of agent {agent.slug} revoked",
    )
