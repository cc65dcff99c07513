from django.http import HttpRequest, JsonResponse


def healthz(request: HttpRequest) -> JsonResponse:
    """Process is up (no dependencies checked)."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _check_broker() -> str:
    from django.conf import settings

    from contextkb.celery import app

    with app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=settings.READYZ_TIMEOUT)
    return "ok"


def _check_embeddings() -> str:
    """The embeddings provider. Informative only: without it writes still succeed and search
    falls back to full-text, so a provider outage makes the service "degraded", not unready."""
    from django.conf import settings

    from apps.retrieval import providers

    provider = providers.get_provider()
    if provider is None:
        return "disabled"
    if isinstance(provider, providers.WordLlamaProvider):
        return "ok"  # local model shipped in the wheel; nothing remote to reach
    # Only OpenAIProvider is left here, and its embed() takes these; the Protocol does not.
    provider.embed(["readiness probe"], timeout=settings.READYZ_TIMEOUT, attempts=1)  # type: ignore[call-arg]
    return "ok"


def _check_replica() -> str:
    """The read replica, when configured. Informative only: context reads fall back to the
    primary while it is down."""
    from apps.core import replica

    return replica.check()


# Checks whose failure makes the process unready (503); the others only degrade it.
REQUIRED_CHECKS = {"database", "broker"}
READY_CHECKS = {
    "database": _check_database,
    "broker": _check_broker,
    "embeddings": _check_embeddings,
    "replica": _check_replica,
}


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready to serve: the database and the broker answer (503 otherwise); the embeddings provider
    is reported too ("degraded" when it fails). Errors show their class, not their text, which may
    hold addresses."""
    checks: dict[str, str] = {}
    for name, check in READY_CHECKS.items():
        try:
            checks[name] = check()
        except Exception as exc:
            checks[name] = f"error: {exc.__class__.__name__}"
    failed = {name for name, value in checks.items() if value.startswith("error")}
    status = "unavailable" if failed & REQUIRED_CHECKS else "degraded" if failed else "ok"
    response = JsonResponse({"status": status, "checks": checks})
    if status == "unavailable":
        response.status_code = 503
    response["Cache-Control"] = "no-store"
    return response


def server_error(request: HttpRequest):
    """handler500: a database outage anywhere in the stack is a 503 (retry soon), not a 500."""
    import sys

    from django.views.defaults import server_error as default_server_error

    from apps.core.middleware import DB_ERRORS, database_unavailable_response, wants_json

    if isinstance(sys.exception(), DB_ERRORS):
        return database_unavailable_response(request)
    if wants_json(request):
        return JsonResponse(
            {"error": {"code": "server_error", "message": "Internal server error.", "details": {}}},
            status=500,
        )
    return default_server_error(request)
