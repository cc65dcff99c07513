"""Errors raised by services. Each front door maps them to its own response (400/403/404/409/412).

`error_body` is the JSON shape every HTTP door answers an error with (REST API, MCP, OAuth)."""

from typing import Any


class ServiceError(Exception):
    """Base for every refusal a service can give; carries a stable code and details."""

    code = "invalid"

    def __init__(self, message: str, *, details: Any = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.details = details if details is not None else {}
        if code:
            self.code = code


class InvalidInput(ServiceError):
    """The request itself is wrong (HTTP 400); `details` maps field names to messages."""

    code = "invalid"


class NotFound(ServiceError):
    """The object does not exist or the actor may not see it (HTTP 404)."""

    code = "not_found"


class Forbidden(ServiceError):
    """The actor can see the object but may not do this (HTTP 403)."""

    code = "forbidden"


class Conflict(ServiceError):
    """The change contradicts the current state, e.g. a duplicate link or a cycle (HTTP 409)."""

    code = "conflict"


class VersionConflict(ServiceError):
    """Someone else saved first: the expected version is not the current one (HTTP 412)."""

    code = "version_conflict"

    def __init__(self, message: str, *, current_version: int, details: Any = None):
        super().__init__(message, details=details or {"current_version": current_version})
        self.current_version = current_version


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """{"error": {"code", "message", "details"}}; details that are not a dict go under
    non_field_errors, so clients always find a dict."""
    if details is None:
        details = {}
    elif not isinstance(details, dict):
        details = {"non_field_errors": details}
    return {"error": {"code": code, "message": message, "details": details}}
