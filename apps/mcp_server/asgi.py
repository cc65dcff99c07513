"""The MCP Streamable HTTP app, behind the same bearer-token check as the REST API.

Tokens are API tokens (`ckb_…`) or OAuth access tokens, which are backed by an API token of
the person who consented (apps.oauth), so one check serves both. A 401 points OAuth clients at
the protected resource metadata (RFC 9728) in its `WWW-Authenticate` header.

`contextkb.asgi` routes `/mcp` here and everything else to Django. The SDK runs stateless with
JSON responses, so any web process (and any number of them) can answer any request.
"""

from __future__ import annotations

import json
import logging
import math
from types import SimpleNamespace

from asgiref.sync import sync_to_async
from mcp.server.transport_security import TransportSecuritySettings

from apps.core.middleware import DB_ERRORS
from apps.mcp_server.auth import bearer_token
from apps.mcp_server.server import mcp

PATH = "/mcp"
logger = logging.getLogger(__name__)


def _check_token(plain: str, meta: dict) -> tuple[str, float | None]:
    """("ok" | "unauthorized" | "throttled", seconds to wait): the REST API's token check and
    its rate limits (per token and per client address, the same counters), so a tool cannot
    get around the limits by switching front doors."""
    from django.db import close_old_connections

    from apps.accounts.services import token_authenticate
    from apps.core.throttling import IPRateThrottle, TokenRateThrottle

    close_old_connections()
    token = token_authenticate(plain)
    if token is None:
        return "unauthorized", None
    request = SimpleNamespace(auth=token, META=meta)
    waits = [
        throttle.wait()
        for throttle in (TokenRateThrottle(), IPRateThrottle())
        # These throttles read only .auth and .META of the request, and not the view.
        if not throttle.allow_request(request, None)  # type: ignore[arg-type]
    ]
    if waits:
        return "throttled", max((w or 1.0) for w in waits)
    return "ok", None


async def _error(send, status: int, code: str, message: str, details: dict, header) -> None:
    """The API's error shape (apps.core.errors.error_body), with one extra header."""
    from apps.core.errors import error_body

    body = json.dumps(error_body(code, message, details)).encode()
    headers = [
        (b"content-type", b"application/json"),
        header,
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _throttled(send, wait: float) -> None:
    from rest_framework.exceptions import Throttled

    seconds = max(1, math.ceil(wait))
    message = str(Throttled(seconds).detail)  # the REST API's wording
    await _error(
        send, 429, "throttled", message, {"retry_after": seconds},
        (b"retry-after", str(seconds).encode()),
    )  # fmt: skip


async def _database_unavailable(send) -> None:
    """The REST API's answer while the database is down (apps.core.middleware)."""
    from apps.core.middleware import RETRY_AFTER_SECONDS

    await _error(
        send,
        503,
        "service_unavailable",
        "The database is unavailable. Please try again in a few seconds.",
        {},
        (b"retry-after", RETRY_AFTER_SECONDS.encode()),
    )


def resource_metadata_url(scope, headers: dict) -> str:
    """Where this endpoint's RFC 9728 metadata lives (path-suffixed form), on the host and scheme
    the client used, so MCP clients find the OAuth authorization server from a 401."""
    from django.conf import settings

    scheme = scope.get("scheme") or "http"
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy_header:
        name = proxy_header[0].removeprefix("HTTP_").replace("_", "-").lower()
        if headers.get(name, "").split(",")[0].strip() == proxy_header[1]:
            scheme = "https"
    host = headers.get("host") or settings.SITE_URL.split("://", 1)[-1]
    return f"{scheme}://{host}/.well-known/oauth-protected-resource{PATH}"


async def _unauthorized(send, message: str, scope, headers: dict) -> None:
    # RFC 6750 + RFC 9728 (as the MCP authorization spec requires): the 401 names the metadata.
    challenge = f'Bearer realm="mcp", resource_metadata="{resource_metadata_url(scope, headers)}"'
    await _error(
        send,
        401,
        "authentication_failed",
        message,
        {},
        (b"www-authenticate", challenge.encode("latin-1")),
    )


class BearerAuthMiddleware:
    """Refuses requests without a valid, active `ckb_…` token (401) or over the API's rate
    limits (429 with Retry-After) before the SDK sees them; while the database is down (the
    token check is the first query), answers 503 with Retry-After in JSON, like the REST API."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            plain = bearer_token(headers)
            if plain is None:
                await _unauthorized(send, "Send `Authorization: Bearer <token>`.", scope, headers)
                return
            client = scope.get("client") or ("", 0)
            meta = {
                "REMOTE_ADDR": client[0] or "",
                "HTTP_X_FORWARDED_FOR": headers.get("x-forwarded-for", ""),
            }
            try:
                verdict, wait = await sync_to_async(_check_token, thread_sensitive=True)(
                    plain, meta
                )
            except DB_ERRORS as exc:
                logger.warning("database unavailable: %s", exc.__class__.__name__)
                await _database_unavailable(send)
                return
            if verdict == "unauthorized":
                await _unauthorized(send, "Invalid, expired or revoked token.", scope, headers)
                return
            if verdict == "throttled":
                await _throttled(send, wait)
                return
        await self.app(scope, receive, send)


def build_app():
    """The SDK's Starlette app (serving PATH), wrapped in the token check."""
    from django.conf import settings

    hosts = [h for h in settings.ALLOWED_HOSTS if h != "*"]
    security = TransportSecuritySettings(
        # DNS-rebinding protection needs the allowed Host values; "*" in ALLOWED_HOSTS turns
        # it off (as it turns off Django's own check).
        enable_dns_rebinding_protection="*" not in settings.ALLOWED_HOSTS,
        allowed_hosts=[f"{h}:*" for h in hosts] + hosts,
        allowed_origins=[f"http://{h}:*" for h in hosts] + [f"https://{h}:*" for h in hosts],
    )
    app = mcp.streamable_http_app(
        streamable_http_path=PATH,
        stateless_http=True,
        json_response=True,
        transport_security=security,
    )
    return app, BearerAuthMiddleware(app)


def with_mcp(django_app):
    """An ASGI app: `/mcp` to the MCP server, lifespan to the SDK, the rest to Django."""
    starlette_app, protected = build_app()

    async def application(scope, receive, send):
        if scope["type"] == "lifespan":
            await starlette_app(scope, receive, send)
        elif scope["type"] == "http" and (scope["path"] == PATH or scope["path"] == PATH + "/"):
            await protected(scope, receive, send)
        else:
            await django_app(scope, receive, send)

    return application
