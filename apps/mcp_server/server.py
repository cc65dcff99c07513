"""contextkb as an MCP server (official `mcp` SDK, v2 `MCPServer`).

Tools: search_context, get_record, guardrails_for_paths, report_gap, assess_change, get_bundle;
resources contextkb://SPACE/KEY; for registered agents propose_record, propose_update,
flag_outdated, escalate. The tools are thin: declared here (their docstrings are what clients
read), they run as the caller through `auth.run_tool` and do their work in `tools` (agents':
apps.agents.mcp), calling the same selectors and services as the REST API, and render markdown
with provenance markers.
"""

from __future__ import annotations

from typing import Any

import mcp_types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError

from apps.mcp_server import tools
from apps.mcp_server.auth import run_tool

INSTRUCTIONS = (
    "contextkb holds this team's decisions, constraints, product intent and guardrails for AI "
    "agents. Before changing code, call guardrails_for_paths with the files you will touch and "
    "search_context with your task; follow guardrails and constraints, cite record keys, and "
    "treat stale or suspect records with care. If you needed something that was not there, "
    "call report_gap."
)


class ContextKBServer(MCPServer):
    """The SDK's server, with resources/list naming the records the caller may see (paged), so
    clients can offer them to attach; reading one goes through the `contextkb://` template."""

    async def _handle_list_resources(self, ctx, params):
        context = Context(request_context=ctx, mcp_server=self)
        cursor = params.cursor if params is not None else None
        resources, next_cursor = await run_tool(
            tools.list_records, context, "list_resources", cursor=cursor
        )
        return mcp_types.ListResourcesResult(resources=resources, next_cursor=next_cursor)


mcp = ContextKBServer(name="contextkb", instructions=INSTRUCTIONS, version="0.1.0")


@mcp.tool()
async def search_context(
    query: str,
    paths: list[str] | None = None,
    max_tokens: int = 4000,
    space: str | None = None,
    as_of: str | None = None,
    ctx: Context | None = None,
) -> str:
    """Find the team's decisions, constraints, intent and guardrails relevant to a task.

    query: what you are about to do, in plain words. paths: files you are working on
    (guardrails and constraints anchored to them always come first). max_tokens: budget for the
    answer (default 4000). space: limit to one space (slug). as_of: an ISO date or date-time
    (e.g. the date of the commit you are reviewing) to read the records as they were then.
    Returns markdown with each record between <record> markers carrying its key, revision,
    status and freshness; the header names the bundle id, which get_bundle returns again.
    """
    return await run_tool(
        tools.search,
        ctx,
        "search_context",
        query=query,
        paths=paths,
        max_tokens=max_tokens,
        space=space,
        as_of=as_of,
    )


@mcp.tool()
async def get_bundle(bundle_id: str, ctx: Context | None = None) -> str:
    """A context bundle served earlier (search_context's header names its id), as it was sent:
    to check what a citation such as "bundle 3f9c…" rested on."""
    return await run_tool(tools.stored_bundle, ctx, "get_bundle", bundle_id=bundle_id)


@mcp.tool()
async def guardrails_for_paths(
    paths: list[str], space: str | None = None, ctx: Context | None = None
) -> str:
    """The guardrails and constraints anchored to these file paths (e.g. services/billing/api.py).
    Follow them while changing those files."""
    return await run_tool(tools.guardrails, ctx, "guardrails_for_paths", paths=paths, space=space)


@mcp.tool()
async def get_record(key: str, space: str | None = None, ctx: Context | None = None) -> str:
    """One record in full (e.g. key="DEC-12"), with its status, freshness, owner and link.
    Pass `space` (slug) when the key exists in several spaces."""
    return await run_tool(tools.record_markdown, ctx, "get_record", key=key, space=space)


@mcp.tool()
async def report_gap(
    query: str, note: str = "", space: str | None = None, ctx: Context | None = None
) -> str:
    """Tell the team what you needed to know and could not find (query), optionally why (note)."""
    return await run_tool(tools.report_gap, ctx, "report_gap", query=query, note=note, space=space)


@mcp.tool()
async def assess_change(
    paths: list[str],
    title: str = "",
    description: str = "",
    space: str | None = None,
    ctx: Context | None = None,
) -> str:
    """How deeply to review a change, and which records govern it: give the changed file paths
    (and optionally the pull request's title and description). Returns the review level (deep,
    normal or light) with reasons, and the guardrails, constraints, decisions and intent that
    apply, each with owner, status, freshness, impact and reversibility."""
    return await run_tool(
        tools.assess_change,
        ctx,
        "assess_change",
        paths=paths,
        title=title,
        description=description,
        space=space,
    )


@mcp.resource(
    "contextkb://{space}/{key}",
    name="record",
    description="A contextkb record by space slug and key, e.g. contextkb://payments/DEC-12.",
    mime_type="text/markdown",
)
async def record_resource(space: str, key: str, ctx: Context | None = None) -> str:
    try:
        return await run_tool(tools.record_markdown, ctx, "resource", key=key, space=space)
    except ToolError as exc:
        raise ResourceError(str(exc)) from exc


# --- registered agents: proposals and escalation (logic in apps.agents.mcp) -------------------


async def _agent_tool(name: str, ctx: Context | None, **kwargs: Any) -> str:
    """Run the agent tool `name` of apps.agents.mcp (same name, same arguments) as the caller."""
    from apps.agents import mcp as agent_mcp

    return await run_tool(getattr(agent_mcp, name), ctx, name, **kwargs)


@mcp.tool()
async def propose_record(
    title: str,
    kind: str = "decision",
    summary: str = "",
    body: str = "",
    tags: list[str] | None = None,
    anchors: list[str] | None = None,
    rationale: str = "",
    space: str | None = None,
    ctx: Context | None = None,
) -> str:
    """Propose a new record (kind: decision, constraint, intent or guardrail) for a person to
    review; accepted, it becomes a draft. Nothing changes until then. rationale: why it is
    needed. Registered agents only. Returns the proposal id to read back its status."""
    return await _agent_tool(
        "propose_record",
        ctx,
        space=space,
        kind=kind,
        title=title,
        summary=summary,
        body=body,
        tags=tags,
        anchors=anchors,
        rationale=rationale,
    )


@mcp.tool()
async def propose_update(
    key: str,
    changes: dict[str, str | list[str]],
    base_version: int | None = None,
    rationale: str = "",
    space: str | None = None,
    ctx: Context | None = None,
) -> str:
    """Propose a change to a record (e.g. key="DEC-12"): `changes` maps fields (title, summary,
    body, tags, anchors) to their new values; `base_version` is the record version you read
    (default: the current one). The owner reviews it; if the record changed meanwhile they see
    a conflict. Registered agents only."""
    return await _agent_tool(
        "propose_update",
        ctx,
        space=space,
        key=key,
        changes=changes,
        base_version=base_version,
        rationale=rationale,
    )


@mcp.tool()
async def flag_outdated(
    key: str,
    evidence: str = "",
    evidence_url: str = "",
    base_version: int | None = None,
    space: str | None = None,
    ctx: Context | None = None,
) -> str:
    """Tell the record's owner that a record no longer holds, with evidence: a link
    (evidence_url, e.g. the commit or pull request) and/or text. Registered agents only."""
    return await _agent_tool(
        "flag_outdated",
        ctx,
        space=space,
        key=key,
        evidence=evidence,
        evidence_url=evidence_url,
        base_version=base_version,
    )


@mcp.tool()
async def escalate(
    guardrail_key: str,
    action: str,
    why: str,
    idempotency_key: str | None = None,
    space: str | None = None,
    ctx: Context | None = None,
) -> str:
    """Before crossing a guardrail, ask its escalation contact (guardrails_for_paths names them):
    what you were about to do (action) and why you are asking (why). They get one email at once;
    retrying the same call (same idempotency_key, or the same words within 15 minutes) sends
    nothing more. Registered agents only."""
    return await _agent_tool(
        "escalate",
        ctx,
        space=space,
        guardrail_key=guardrail_key,
        action=action,
        why=why,
        idempotency_key=idempotency_key,
    )
