"""One error shape for the whole API: {"error": {"code", "message", "details"}}.

`api_exception_handler` is DRF's EXCEPTION_HANDLER; apps.api.middleware gives Django-level
errors under /api/ (unknown URLs, crashes) the same shape.
"""

from __future__ import annotations

import logging
import math

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response

from apps.core.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceError,
    VersionConflict,
    error_body,
)

logger = logging.getLogger(__name__)

SERVICE_STATUS: dict[type[ServiceError], int] = {
    InvalidInput: status.HTTP_400_BAD_REQUEST,
    Forbidden: status.HTTP_403_FORBIDDEN,
    NotFound: status.HTTP_404_NOT_FOUND,
    Conflict: status.HTTP_409_CONFLICT,
    VersionConflict: status.HTTP_412_PRECONDITION_FAILED,
}

# Stable codes for DRF's own exceptions (clients switch on `code`, not on the message).
DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.ValidationError: "invalid",
    exceptions.ParseError: "parse_error",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
}


class PreconditionRequired(exceptions.APIException):
    status_code = status.HTTP_428_PRECONDITION_REQUIRED
    default_detail = "This request needs an If-Match header with the record's current ETag."
    default_code = "precondition_required"


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def _validation_message(details) -> str:
    """A one-line summary of DRF validation details, naming the first bad field."""
    if isinstance(details, dict) and details:
        field, problems = next(iter(details.items()))
        first = problems[0] if isinstance(problems, list) and problems else problems
        if isinstance(first, dict):
            return f"{field}: invalid."
        return f"{field}: {first}"
    if isinstance(details, list) and details:
        return str(details[0])
    return "The request is not valid."


def _service_error_response(exc: ServiceError) -> Response:
    code = SERVICE_STATUS.get(type(exc)) or next(
        (s for cls, s in SERVICE_STATUS.items() if isinstance(exc, cls)), 400
    )
    headers: dict[str, str] = {}
    if isinstance(exc, VersionConflict):
        headers["ETag"] = f'"{exc.current_version}"'
    return Response(error_body(exc.code, exc.message, exc.details), status=code, headers=headers)


def _as_api_exception(exc: Exception) -> Exception:
    """Django's own refusals as the DRF exception with the same meaning; others unchanged."""
    if isinstance(exc, RequestDataTooBig):
        # Django refuses a body over DATA_UPLOAD_MAX_MEMORY_SIZE when DRF first reads it.
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        return PayloadTooLarge(f"The request body is limited to {limit:,} bytes.")
    if isinstance(exc, TooManyFieldsSent | TooManyFilesSent):
        return exceptions.ParseError("The form has too many fields or files.")
    if isinstance(exc, Http404):
        return exceptions.NotFound()
    if isinstance(exc, DjangoPermissionDenied):
        return exceptions.PermissionDenied()
    if isinstance(exc, DjangoValidationError):
        return exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )
    return exc


def api_exception_handler(exc, context) -> Response | None:
    if isinstance(exc, ServiceError):
        return _service_error_response(exc)
    exc = _as_api_exception(exc)
    if not isinstance(exc, exceptions.APIException):
        return None  # a bug: let Django log it and answer 500 (as JSON under /api/)

    headers: dict[str, str] = {}
    if isinstance(exc, exceptions.ValidationError):
        details = exc.detail
        message = _validation_message(details)
    else:
        details = {}
        message = str(exc.detail)
    error_code = next((c for cls, c in DRF_CODES.items() if isinstance(exc, cls)), None)
    if error_code is None:
        error_code = str(exc.default_code)
    auth_header = getattr(exc, "auth_header", None)  # set by DRF on 401s; not in the stubs
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    retry = getattr(exc, "wait", None) if isinstance(exc, exceptions.Throttled) else None
    if retry is not None:  # Throttled.wait: not in the stubs
        wait = math.ceil(retry)
        headers["Retry-After"] = str(wait)
        details = {"retry_after": wait}
    return Response(
        error_body(error_code, message, details), status=exc.status_code, headers=headers
    )
