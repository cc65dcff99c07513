"""Request ids, the access log, audit of permission denials, and fast 503s when the database is
down. Each piece is a small middleware listed in settings.MIDDLEWARE."""

from __future__ import annotations

import logging
import re
import time
import uuid

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.functional import empty

from apps.core import request_context

access_logger = logging.getLogger("contextkb.request")
logger = logging.getLogger("contextkb.errors")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller (a proxy, a load balancer, a tool) may send its own id; anything else is replaced.
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
DB_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = "5"


class RequestIdMiddleware:
    """Give every request an id (kept from X-Request-ID when sane), expose it to logs and the audit
    log, echo it in the response header, and write one access-log line per request."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]  # an extra attribute for whoever handles it
        ctx = request_context.RequestContext(
            request_id=request_id,
            ip=request_context.client_ip(request),
            path=request.path[:500],
            method=request.method or "",
        )
        token = request_context.set_current(ctx)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            if not (
                response.status_code < 400 and request.path in ("/healthz", "/readyz")
            ):  # probes every few seconds would drown the log
                user = getattr(request, "user", None)
                access_logger.info(
                    "%s %s %s",
                    request.method,
                    request.path,
                    response.status_code,
                    extra={
                        "method": request.method,
                        "path": request.path,
                        "status": response.status_code,
                        "duration_ms": round((time.monotonic() - started) * 1000, 1),
                        # _wrapped: never trigger a lazy user lookup (a query) just to log.
                        "user_id": _loaded_user_id(user),
                    },
                )
            return response
        finally:
            request_context.reset(token)


def _loaded_user_id(user) -> int | None:
    wrapped = getattr(user, "_wrapped", user)
    if wrapped is None or wrapped is empty:
        return None
    return getattr(wrapped, "pk", None)


def wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return (
        request.path.startswith(("/api/", "/mcp"))
        or "application/json" in accept
        or request.path in ("/healthz", "/readyz")
    )


def database_unavailable_response(request: HttpRequest) -> HttpResponse:
    """503 with Retry-After, JSON for API clients and a short page for people. Renders no
    template: templates may touch the database that is down."""
    message = "The database is unavailable. Please try again in a few seconds."
    if wants_json(request):
        response: HttpResponse = JsonResponse(
            {"error": {"code": "service_unavailable", "message": message, "details": {}}},
            status=503,
        )
    else:
        response = HttpResponse(
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<title>Temporarily unavailable · contextkb</title></head><body>"
            "<h1>Temporarily unavailable</h1>"
            f"<p>{message}</p></body></html>",
            status=503,
            content_type="text/html; charset=utf-8",
        )
    response["Retry-After"] = RETRY_AFTER_SECONDS
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    """A database that is down or restarting gives a fast 503, not a 500 or a hang (the connect
    timeout is DATABASE_CONNECT_TIMEOUT). Errors raised outside views (in other middleware) are
    caught by the handler500 view, apps.core.views.server_error."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception):
        if isinstance(exception, DB_ERRORS):
            logger.warning("database unavailable: %s", exception.__class__.__name__)
            return database_unavailable_response(request)
        return None


class PermissionDeniedAuditMiddleware:
    """Every 403 answer, from any front door, is a security event worth keeping."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.status_code == 403:
            from apps.audit.models import AuditEvent
            from apps.audit.services import audit_log

            user = getattr(request, "user", None)
            try:
                actor = user if user is not None and user.is_authenticated else None
            except DB_ERRORS:
                actor = None
            audit_log(
                kind=AuditEvent.Kind.PERMISSION_DENIED,
                actor=actor,
                message=f"{request.method} {request.path}"[:500],
            )
        return response


class PathContentSecurityPolicyMiddleware:
    """Swap in a per-path policy (settings.CSP_PATH_POLICIES: {path prefix: policy}) for pages
    we do not write ourselves, e.g. the vendored Swagger UI. Must sit after (inside)
    django.middleware.csp.ContentSecurityPolicyMiddleware, which reads the override."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        for prefix, policy in getattr(settings, "CSP_PATH_POLICIES", {}).items():
            if request.path.startswith(prefix):
                if settings.SECURE_CSP:
                    response._csp_config = policy
                if settings.SECURE_CSP_REPORT_ONLY:
                    response._csp_ro_config = policy
                break
        return response
