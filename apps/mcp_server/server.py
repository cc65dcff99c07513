"""contextkb as an MCP server (official `mcp` SDK, v2 `MCPServer`).

Tools: search_context, get_record, guardrails_for_paths, report_gap, assess_change; resources
contextkb://SPACE/KEY. The tools are thin: they authenticate, call the same selectors and
services as the REST API, and render markdown with provenance markers.

Who is asking: over Streamable HTTP the `Authorization: Bearer ckb_…` header (checked first by
`asgi.BearerAuthMiddleware`, re-read per call so revocation applies at once); over stdio the
token given to `manage.py mcp_stdio --token …`.
"""

from __future__ import annotations

import dataclasses
import functools
import time

import mcp_types
from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.utils import timezone
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError

from apps.accounts.models import ApiToken
from apps.accounts.services import token_authenticate
from apps.core.errors import ServiceError
from apps.core.middleware import DB_ERRORS
from apps.core.replica import on_replica
from apps.records import selectors as record_selectors
from apps.records.models import Record
from apps.retrieval import bundle as bundle_module
from apps.retrieval import services as retrieval_services
from apps.retrieval import tokens, usage
from apps.retrieval.bundle import (
    ContextParams,
    context_bundle,
    parse_params,
    record_url,
    render_block,
)

INSTRUCTIONS = (
    "contextkb holds this team's decisions, constraints, product intent and guardrails for AI "
    "agents. Before changing code, call guardrails_for_paths with the files you will touch and "
    "search_context with your task; follow guardrails and constraints, cite record keys, and "
    "treat stale or suspect records with care. If you needed something that was not there, "
    "call report_gap."
)

RESOURCES_PAGE = 100


class ContextKBServer(MCPServer):
    """The SDK's server, with resources/list naming the records the caller may see (paged), so
    clients can offer them to attach; reading one goes through the `contextkb://` template."""

    async def _handle_list_resources(self, ctx, params):
        context = Context(request_context=ctx, mcp_server=self)
        cursor = params.cursor if params is not None else None
        resources, next_cursor = await _run(_list_records, context, "list_resources", cursor=cursor)
        return mcp_types.ListResourcesResult(resources=resources, next_cursor=next_cursor)


mcp = ContextKBServer(name="contextkb", instructions=INSTRUCTIONS, version="0.1.0")

# Set by `manage.py mcp_stdio`: the plain token of the local agent.
STDIO_TOKEN: str | None = None


class Unauthorized(ToolError):
    pass


def _bearer(headers) -> str | None:
    value = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, plain = value.partition(" ")
    return plain.strip() if scheme.lower() == "bearer" and plain.strip() else None


def _principal_sync(plain: str | None) -> ApiToken:
    close_old_connections()
    token = token_authenticate(plain) if plain else None
    if token is None:
        raise Unauthorized("Invalid, expired or revoked token.")
    return token


def _plain_token(ctx: Context | None) -> str | None:
    headers = None
    if ctx is not None:
        try:
            headers = ctx.headers
        except ValueError:
            headers = None
    if headers is not None:
        return _bearer(headers)
    return STDIO_TOKEN


def _tool_name(ctx: Context | None) -> str:
    """The MCP client's own name and version, else its User-Agent."""
    if ctx is None:
        return "mcp"
    try:
        params = ctx.session.client_params
        info = getattr(params, "client_info", None) if params else None
        if info is not None:
            return f"{info.name} {getattr(info, 'version', '') or ''}".strip()
    except (ValueError, AttributeError):
        pass
    try:
        headers = ctx.headers
    except ValueError:
        headers = None
    return (headers or {}).get("user-agent", "mcp") if headers is not None else "mcp (stdio)"


def _agent_check(principal, operation: str, kwargs: dict) -> None:
    """A registered agent's token may call only its declared tools, spaces and paths
    (apps.agents.scope; refusals are audited)."""
    if getattr(principal, "agent_id", None) is None:
        return
    from apps.agents import scope

    space = kwargs.get("space")
    paths = kwargs.get("paths") or []
    scope.check_call(
        principal,
        door="mcp",
        operation=operation,
        spaces=[space] if isinstance(space, str) and space else [],
        paths=[p for p in paths if isinstance(p, str)] if isinstance(paths, list) else [],
    )


def _run(fn, ctx: Context | None, operation: str, **kwargs):
    """Authenticate, call `fn(principal, **kwargs)` in Django's sync world, log usage."""

    def call(plain, tool):
        principal = _principal_sync(plain)
        started = time.perf_counter()
        try:
            _agent_check(principal, operation, kwargs)  # registered agents: declared scope only
            text, bundle = fn(principal, **kwargs)
        except ServiceError as exc:
            details = f" {exc.details}" if exc.details else ""
            raise ToolError(f"{exc.message}{details}") from exc
        except DB_ERRORS as exc:
            # The HTTP middleware answers 503 when the database is already down; this is the
            # outage that starts mid-call.
            raise ToolError(
                "The database is unavailable. Please try again in a few seconds."
            ) from exc
        if bundle is not None:
            usage.dispatch(
                usage.build_payload(
                    channel="mcp",
                    operation=operation,
                    principal=principal,
                    tool=tool,
                    bundle=bundle,
                    latency_ms=(time.perf_counter() - started) * 1000,
                )
            )
        return text

    return sync_to_async(call, thread_sensitive=True)(_plain_token(ctx), _tool_name(ctx))


LEFT_OUT = "Left out (token budget or superseded): "


@functools.cache
def _left_out_reserve() -> int:
    """Tokens kept free in the budget for the line naming what was left out (its shortest
    form)."""
    return tokens.count_after_newline(f"{LEFT_OUT}9999 records.")


def _left_out_line(omitted: list[dict], room: int) -> str:
    """As many of the left-out keys as fit into `room` tokens, then how many more; "" if even
    the count does not fit."""
    keys = [o["key"] for o in omitted]
    for shown in range(len(keys), -1, -1):
        rest = len(keys) - shown
        if shown == 0:
            line = f"{LEFT_OUT}{rest} record{'s' if rest != 1 else ''}."
        elif rest:
            line = f"{LEFT_OUT}{', '.join(keys[:shown])} and {rest} more."
        else:
            line = f"{LEFT_OUT}{', '.join(keys)}."
        if len(line) <= room * bundle_module.MAX_CHARS_PER_TOKEN and (
            tokens.count_after_newline(line) <= room
        ):
            return line
    return ""


def _search(principal, *, query, paths, max_tokens, space, kinds=(), as_of=None):
    data = {"q": query, "paths": list(paths or []), "max_tokens": max_tokens, "kinds": list(kinds)}
    if space:
        data["spaces"] = [space]
    if as_of:
        data["as_of"] = as_of
    params: ContextParams = parse_params(data)
    # The text returned never exceeds max_tokens: the records are packed into the budget less
    # room for the "Left out" line, which then names as many keys as fit.
    packed = dataclasses.replace(params, max_tokens=params.max_tokens - _left_out_reserve())
    # Read-only: served by the read replica when one is configured (DATABASE_REPLICA_URL).
    bundle = on_replica(context_bundle, principal=principal, params=packed)
    text = bundle["markdown"]
    if bundle["omitted"]:
        used = bundle["tokens_used"]  # exact (apps.retrieval.tokens)
        line = _left_out_line(bundle["omitted"], params.max_tokens - used)
        if line and (tokens.is_additive() or tokens.count(text + line) <= params.max_tokens):
            text += line
    # Kept as sent, for get_bundle and GET /api/v1/context/bundles/<id> (apps.retrieval.usage).
    bundle["_served_markdown"] = text
    bundle["_served_format"] = "markdown"
    return text, bundle


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
    return await _run(
        _search,
        ctx,
        "search_context",
        query=query,
        paths=paths,
        max_tokens=max_tokens,
        space=space,
        as_of=as_of,
    )


def _stored_bundle(principal, *, bundle_id: str):
    _check_text("bundle_id", bundle_id, 40)
    stored = bundle_module.bundle_fetch(principal=principal, bundle_id=(bundle_id or "").strip())
    if stored is None:
        raise ServiceError(f"No context bundle {bundle_id!r} is visible to this token.")
    return stored.markdown, None


@mcp.tool()
async def get_bundle(bundle_id: str, ctx: Context | None = None) -> str:
    """A context bundle served earlier (search_context's header names its id), as it was sent:
    to check what a citation such as "bundle 3f9c…" rested on."""
    return await _run(_stored_bundle, ctx, "get_bundle", bundle_id=bundle_id)


def _guardrails(principal, *, paths, space):
    if not paths:
        raise ServiceError("Give at least one file path.")
    text, bundle = _search(
        principal,
        query="",
        paths=paths,
        max_tokens=8000,
        space=space,
        kinds=(Record.Kind.GUARDRAIL, Record.Kind.CONSTRAINT),
    )
    from apps.agents.mcp import escalation_contacts_text

    return text + escalation_contacts_text(principal, bundle), bundle


@mcp.tool()
async def guardrails_for_paths(
    paths: list[str], space: str | None = None, ctx: Context | None = None
) -> str:
    """The guardrails and constraints anchored to these file paths (e.g. services/billing/api.py).
    Follow them while changing those files."""
    return await _run(_guardrails, ctx, "guardrails_for_paths", paths=paths, space=space)


def _check_text(name: str, value: str | None, limit: int) -> None:
    if value is not None and (len(value) > limit or "\x00" in value):
        raise ServiceError(f"`{name}` must be at most {limit} characters, without NUL.")


def _record_markdown(principal, *, key: str, space: str | None):
    _check_text("key", key, 40)
    _check_text("space", space, 60)
    key = (key or "").strip().upper()
    qs = record_selectors.record_list_visible(principal=principal).filter(key__iexact=key)
    if space:
        qs = qs.filter(space__slug=space)
    matches = list(qs[:5])
    if not matches:
        raise ServiceError(f"No record {key!r} is visible to this token.")
    if len(matches) > 1:
        spaces = ", ".join(sorted(r.space.slug for r in matches))
        raise ServiceError(f"{key} exists in several spaces ({spaces}); pass `space`.")
    record = matches[0]
    record.open_reason_messages = [
        r.text
        for r in record_selectors.present_reasons(
            principal, record.suspect_reasons.filter(resolved_at__isnull=True)
        )
    ]
    item = {
        "key": record.key,
        "space": record.space.slug,
        "kind": record.kind,
        "title": record.title,
        "status": record.status,
        "freshness": record.freshness,
        # Worded as the context API words them (review dates, never verified, superseded).
        "freshness_reasons": bundle_module.freshness_reasons(record, timezone.now()),
        "last_verified_at": record.last_verified_at.isoformat()
        if record.last_verified_at
        else None,
        "owner": {"name": record.owner_label},
        "url": record_url(record),
        "note": "",
    }
    if record.status == Record.Status.SUPERSEDED:
        successor = record_selectors.successor_for(principal=principal, record=record)
        if isinstance(successor, Record):
            item["note"] = (
                f"Superseded by {successor.key} ({successor.title}); do not rely on this record."
            )
        elif successor is not None:
            item["note"] = f"Superseded by {successor}; do not rely on this record."
    text = "\n\n".join(p for p in (record.summary, record.body.strip()) if p)
    bundle = {
        "query": f"get_record {record.key}",
        "paths": [],
        "_space_ids": [record.space_id],
        "items": [{"id": record.pk, "key": record.key, "score": 1.0}],
    }
    return render_block(item, text), bundle


@mcp.tool()
async def get_record(key: str, space: str | None = None, ctx: Context | None = None) -> str:
    """One record in full (e.g. key="DEC-12"), with its status, freshness, owner and link.
    Pass `space` (slug) when the key exists in several spaces."""
    return await _run(_record_markdown, ctx, "get_record", key=key, space=space)


def _report(principal, *, query: str, note: str, space: str | None):
    from apps.accounts.models import Space

    _check_text("space", space, 60)
    target = None
    if space:
        target = Space.objects.visible_to(principal).filter(slug=space).first()
        if target is None:
            raise ServiceError(f"Space {space!r} not found.")
    gaps = retrieval_services.gap_report(principal=principal, query=query, note=note, space=target)
    counts = ", ".join(f"{g.space.slug}: asked {g.count}×" for g in gaps)
    return f"Thanks: the gap was recorded ({counts}). Owners will see it on the gaps page.", None


@mcp.tool()
async def report_gap(
    query: str, note: str = "", space: str | None = None, ctx: Context | None = None
) -> str:
    """Tell the team what you needed to know and could not find (query), optionally why (note)."""
    return await _run(_report, ctx, "report_gap", query=query, note=note, space=space)


def _assess(principal, *, paths, title, description, space):
    from apps.records import assess

    _check_text("space", space, 60)
    result = on_replica(
        assess.assess_change,
        principal=principal,
        paths=paths or [],
        spaces=[space] if space else [],
        title=title or "",
        description=description or "",
    )
    return assess.assessment_markdown(result), None


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
    return await _run(
        _assess,
        ctx,
        "assess_change",
        paths=paths,
        title=title,
        description=description,
        space=space,
    )


def _list_records(principal, *, cursor: str | None):
    """One page of the records the principal may see, as MCP resources (cursor = offset)."""
    offset = int(cursor) if cursor and cursor.isdigit() and len(cursor) < 10 else 0
    rows = list(
        record_selectors.record_list_visible(principal=principal)
        .order_by("space__slug", "kind", "number")
        .values_list("space__slug", "key", "title", "summary")[offset : offset + RESOURCES_PAGE + 1]
    )
    resources = [
        mcp_types.Resource(
            uri=f"contextkb://{slug}/{key}",
            name=key,
            title=f"{key}: {title}",
            description=summary or None,
            mime_type="text/markdown",
        )
        for slug, key, title, summary in rows[:RESOURCES_PAGE]
    ]
    more = len(rows) > RESOURCES_PAGE
    return (resources, str(offset + RESOURCES_PAGE) if more else None), None


@mcp.resource(
    "contextkb://{space}/{key}",
    name="record",
    description="A contextkb record by space slug and key, e.g. contextkb://payments/DEC-12.",
    mime_type="text/markdown",
)
async def record_resource(space: str, key: str, ctx: Context | None = None) -> str:
    try:
        return await _run(_record_markdown, ctx, "resource", key=key, space=space)
    except ToolError as exc:
        raise ResourceError(str(exc)) from exc


# --- registered agents: proposals and escalation (logic in apps.agents.mcp) -------------------


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
    from apps.agents import mcp as agent_mcp

    return await _run(
        agent_mcp.propose_record,
        ctx,
        "propose_record",
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
    from apps.agents import mcp as agent_mcp

    return await _run(
        agent_mcp.propose_update,
        ctx,
        "propose_update",
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
    from apps.agents import mcp as agent_mcp

    return await _run(
        agent_mcp.flag_outdated,
        ctx,
        "flag_outdated",
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
    from apps.agents import mcp as agent_mcp

    return await _run(
        agent_mcp.escalate,
        ctx,
        "escalate",
        space=space,
        guardrail_key=guardrail_key,
        action=action,
        why=why,
        idempotency_key=idempotency_key,
    )
