"""Django-level errors under /api/ (unknown URL, bad request, crash) in the API's error shape."""

from __future__ import annotations

import json

from django.http import JsonResponse

from apps.core.errors import error_body

CODES = {
    400: ("bad_request", "Bad request."),
    403: ("forbidden", "Forbidden."),
    404: ("not_found", "No such API endpoint."),
    405: ("method_not_allowed", "Method not allowed."),
    413: ("too_large", "The request body is too large."),
    500: ("server_error", "Internal server error."),
    503: ("service_unavailable", "The service is unavailable for a moment; please retry."),
}


class ApiErrorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            request.path.startswith("/api/")
            and response.status_code >= 400
            and not _is_api_error(response)
        ):
            code, message = CODES.get(
                response.status_code, ("error", f"HTTP {response.status_code}.")
            )
            if response.status_code == 404:
                message = f"No API endpoint at {request.path}."
            replaced = JsonResponse(error_body(code, message), status=response.status_code)
            for header in ("Retry-After", "WWW-Authenticate", "Allow"):
                if header in response:
                    replaced[header] = response[header]
            return replaced
        return response


def _is_api_error(response) -> bool:
    if "application/json" not in response.get("Content-Type", ""):
        return False
    if getattr(response, "streaming", False):
        return True
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("error"), dict)
