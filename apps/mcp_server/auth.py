"""Who is asking, and running a tool call as them.

Over Streamable HTTP the `Authorization: Bearer ckb_…` header (checked first by
`asgi.BearerAuthMiddleware`, re-read per call so revocation applies at once); over stdio the
token given to `manage.py mcp_stdio --token …` (`STDIO_TOKEN`). A registered agent's token may
call only its declared tools, spaces and paths.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError

from apps.accounts.models import ApiToken
from apps.accounts.services import token_authenticate
from apps.core.errors import ServiceError
from apps.core.middleware import DB_ERRORS
from apps.retrieval import usage

# Set by `manage.py mcp_stdio`: the plain token of the local agent.
STDIO_TOKEN: str | None = None


class Unauthorized(ToolError):
    pass


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an `Authorization: Bearer …` header, or None."""
    value = headers.get("authorization") or headers.get("Authorization") or ""
    scheme, _, plain = value.partition(" ")
    return plain.strip() if scheme.lower() == "bearer" and plain.strip() else None


def _principal(plain: str | None) -> ApiToken:
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
        return bearer_token(headers)
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


async def run_tool(
    fn: Callable[..., tuple[Any, dict | None]], ctx: Context | None, operation: str, **kwargs: Any
) -> Any:
    """Authenticate, call `fn(principal, **kwargs)` in Django's sync world, log usage."""

    def call(plain, tool):
        principal = _principal(plain)
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

    return await sync_to_async(call, thread_sensitive=True)(_plain_token(ctx), _tool_name(ctx))
