"""What a registered agent may call: its declared spaces, paths, MCP tools and REST areas.

Both front doors ask `check_call` before doing anything for an agent's token (the MCP server
in `_run`, the REST API in its bearer authentication). A call outside the declaration is
refused with `AgentOutOfScope` (403 `agent_out_of_scope`, or an MCP tool error) and written to
the audit log and the agent's page.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, NoReturn

from django.utils import timezone

from apps.core.errors import Forbidden
from apps.records import anchors as anchors_mod

if TYPE_CHECKING:
    from rest_framework.request import Request

    from apps.accounts.models import ApiToken, Space
    from apps.agents.models import Agent

# MCP operations that are not tools of their own: reading and listing resources.
RESOURCE_OPERATIONS = {"resource": "resources", "list_resources": "resources"}
# last_seen_at is written at most this often per agent (every call would be a write).
SEEN_EVERY = dt.timedelta(seconds=30)


class AgentOutOfScope(Forbidden):
    """An agent called outside what it was registered for (HTTP 403)."""

    code = "agent_out_of_scope"


def agent_of(principal: object) -> Agent | None:
    """The registered agent behind an API token, or None (people, plain tokens)."""
    from apps.accounts.models import ApiToken

    if not isinstance(principal, ApiToken) or principal.agent_id is None:
        return None
    return principal.agent


def _values(raw) -> list[str]:
    """Strings from a query-string list, a JSON list or a comma-separated string."""
    if raw is None:
        return []
    items = raw if isinstance(raw, list | tuple) else [raw]
    out: list[str] = []
    for item in items:
        if isinstance(item, str):
            out += [v.strip() for v in item.split(",") if v.strip()]
    return out


def params_of(data) -> tuple[list[str], list[str]]:
    """(space slugs, paths) named by request parameters, whatever their shape."""
    if data is None or not hasattr(data, "get"):
        return [], []

    def get(name):
        return data.getlist(name) if hasattr(data, "getlist") else data.get(name)

    spaces = _values(get("space")) + _values(get("spaces"))
    return spaces, _values(get("paths"))


def path_allowed(agent: Agent, path: str) -> bool:
    globs = agent.path_globs or []
    return not globs or anchors_mod.any_match(globs, [path])


def _refuse(
    agent: Agent, token: ApiToken, message: str, details: dict, *, space: Space | None = None
) -> NoReturn:
    from apps.agents.models import AgentEvent
    from apps.audit.models import AuditEvent
    from apps.audit.services import audit_log

    audit_log(
        kind=AuditEvent.Kind.AGENT_REFUSED,
        actor=token,
        space=space,
        message=f"Agent {agent.slug}: {message}"[:500],
        details={"agent": agent.slug, **details},
    )
    AgentEvent.objects.create(agent=agent, kind=AgentEvent.Kind.REFUSED, message=message[:500])
    raise AgentOutOfScope(message, details={"agent": agent.slug, **details})


def refuse_paths(
    agent: Agent, token: ApiToken, outside: list[str], *, space: Space | None = None
) -> NoReturn:
    """Refuse (and audit) a call on paths outside the agent's declared ones."""
    _refuse(
        agent,
        token,
        f"{agent.name} works on {', '.join(agent.path_globs)}; "
        f"{outside[0]!r} is outside its paths.",
        {"paths": outside[:20], "allowed_paths": list(agent.path_globs)},
        space=space,
    )


def check_call(
    token,
    *,
    door: str,
    operation: str,
    spaces: Iterable[str] = (),
    paths: Iterable[str] = (),
) -> None:
    """Refuse (and audit) an agent's call outside its declaration; note when it was last seen.
    `door` is "mcp" (operation = the tool) or "rest" (operation = the /api/v1/ area)."""
    agent = agent_of(token)
    if agent is None:
        return
    if agent.disabled_at is not None:
        _refuse(agent, token, f"{agent.name} is disabled.", {"disabled": True})
    if door == "mcp":
        tool = RESOURCE_OPERATIONS.get(operation, operation)
        if tool not in (agent.allowed_tools or []):
            _refuse(
                agent,
                token,
                f"{agent.name} may not use the MCP tool {tool!r}.",
                {"tool": tool, "allowed_tools": list(agent.allowed_tools or [])},
            )
    # REST: the /api/v1/<area>/ is the scope. No area (/api/schema/, /api/docs/): open to all.
    elif operation and operation not in (agent.allowed_scopes or []):
        _refuse(
            agent,
            token,
            f"{agent.name} may not call /api/v1/{operation}/ (scope {operation!r}).",
            {"scope": operation, "allowed_scopes": list(agent.allowed_scopes or [])},
        )
    allowed_spaces = {s.slug: s for s in agent.spaces.all()}
    outside = [s for s in spaces if s not in allowed_spaces]
    if outside:
        _refuse(
            agent,
            token,
            f"{agent.name} is not registered for the space {outside[0]!r}.",
            {"spaces": outside, "allowed_spaces": sorted(allowed_spaces)},
        )
    outside_paths = [p for p in paths if not path_allowed(agent, p)]
    if outside_paths:
        space = next(iter(allowed_spaces.values())) if len(allowed_spaces) == 1 else None
        refuse_paths(agent, token, outside_paths, space=space)
    now = timezone.now()
    if agent.last_seen_at is None or now - agent.last_seen_at > SEEN_EVERY:
        type(agent).objects.filter(pk=agent.pk).update(last_seen_at=now)
        agent.last_seen_at = now
    if door == "mcp" and operation == "report_gap":
        note_gap(agent, ", ".join(spaces))


def note_gap(agent: Agent, where: str) -> None:
    from apps.agents.models import AgentEvent

    AgentEvent.objects.create(
        agent=agent,
        kind=AgentEvent.Kind.GAP,
        message=f"Gap reported{' in ' + where if where else ''}",
    )


def rest_area(path: str) -> str:
    """The /api/v1/<area>/ of a request path ("context", "proposals", …); "" if none."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api" and parts[1] == "v1":
        return parts[2]
    return ""


def check_rest_request(request: Request, token: ApiToken) -> None:
    """The REST door: the /api/v1/<area>/ is the scope; `space(s)` and `paths` parameters (query
    string or JSON body) must be inside the declaration."""
    agent = token.agent
    if agent is None:
        return
    area = rest_area(request.path)
    area_for_gap = area == "context" and request.path.rstrip("/").endswith("/gaps")
    spaces, paths = params_of(request.query_params)
    if request.method in ("POST", "PUT", "PATCH"):
        try:
            body = request.data
        except Exception:
            body = None
        more_spaces, more_paths = params_of(body if isinstance(body, dict) else None)
        spaces += more_spaces
        paths += more_paths
    check_call(token, door="rest", operation=area, spaces=spaces, paths=paths)
    if area_for_gap:
        note_gap(agent, ", ".join(spaces))
