"""What the current request is (id, client address, path), for logs and the audit log.

Set by apps.core.middleware.RequestIdMiddleware in a context variable, so code far from the view
(services, token authentication) can tag what it logs without being handed the request.
"""

from __future__ import annotations

import contextvars
import ipaddress
from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class RequestContext:
    request_id: str = ""
    ip: str | None = None
    path: str = ""
    method: str = ""


_EMPTY = RequestContext()
_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "contextkb_request", default=_EMPTY
)


def current() -> RequestContext:
    return _current.get()


def set_current(ctx: RequestContext) -> contextvars.Token:
    return _current.set(ctx)


def reset(token: contextvars.Token) -> None:
    _current.reset(token)


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request) -> str | None:
    """The client's address. Behind N trusted proxies (CONTEXTKB_TRUSTED_PROXY_COUNT) it is the
    N-th address from the right of X-Forwarded-For; otherwise REMOTE_ADDR. Addresses further left
    are written by the client and cannot be trusted."""
    hops = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if hops > 0:
        forwarded = [p for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p]
        if len(forwarded) >= hops:
            found = _valid_ip(forwarded[-hops])
            if found:
                return found
    return _valid_ip(request.META.get("REMOTE_ADDR", "") or "")
