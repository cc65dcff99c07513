"""OpenAPI details drf-spectacular cannot infer: the bearer scheme, the error responses each
operation can really answer, response headers, and which request bodies refuse extra fields."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse

from apps.api.serializers import ErrorSerializer, StrictInput


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "apps.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "ckb_…",
            "description": "An API token from the Tokens page or `manage.py create_api_token`.",
        }


ERRORS = {
    "400": "Invalid input: malformed JSON, wrong types, unknown fields or bad values.",
    "401": "Not signed in, or the token is invalid, expired or revoked.",
    "403": "Signed in but not allowed (e.g. a viewer or a read-only token writing).",
    "404": "No such object, or you cannot see it.",
    "406": "Only application/json responses are offered.",
    "409": "The change conflicts with the current state (duplicate, cycle, taken slug).",
    "412": "If-Match does not match the current version; details.current_version has it.",
    "413": "The request body is too large.",
    "415": "The body must be application/json.",
    "428": "PUT and PATCH need an If-Match header.",
    "429": "Too many requests; retry after Retry-After seconds.",
    "503": "The database is unavailable for a moment; retry after Retry-After seconds.",
}
ERROR_HEADERS = {
    "401": {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "description": 'How to authenticate: `Bearer realm="api"`.',
        }
    },
    "412": {
        "ETag": {
            "schema": {"type": "string"},
            "description": "The record's current version; re-read it, merge, and retry.",
        }
    },
    "429": {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 0},
            "description": "Seconds to wait before the next request.",
        }
    },
    "503": {
        "Retry-After": {
            "schema": {"type": "integer", "minimum": 0},
            "description": "Seconds to wait before retrying.",
        }
    },
}
WRITE_METHODS = ("POST", "PUT", "PATCH", "DELETE")


class AutoSchema(SpectacularAutoSchema):
    """Adds the error envelope to every operation; `postprocess` keeps only the codes that apply."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code in ERRORS:
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(response=ErrorSerializer, description=ERRORS[code]),
                    code,
                    direction=direction,
                )
        return dict(sorted(responses.items()))


def _applicable_errors(method: str, operation: dict) -> set[str]:
    """The error statuses this operation can answer, judged from what it takes."""
    codes = {"400", "403", "404", "406", "429", "503"}
    if operation.get("security") != [{}]:
        codes.add("401")  # it authenticates (an empty requirement means "no auth")
    if method in WRITE_METHODS:
        codes.add("409")
    if "requestBody" in operation:
        codes |= {"413", "415"}
    if_match = [p for p in operation.get("parameters", []) if p.get("name") == "If-Match"]
    if if_match:
        codes.add("412")
        if if_match[0].get("required"):
            codes.add("428")
    return codes


def _strict_component_names() -> set[str]:
    names, todo = set(), list(StrictInput.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        base = cls.__name__.removesuffix("Serializer")
        names |= {f"{base}Request", f"Patched{base}Request"}
    return names


# Numeric path parameters are matched by a digits-only URL pattern; they are integers.
INTEGER_PATH_PARAMETERS = {
    "id": {"type": "integer", "minimum": 1},
    "number": {"type": "integer", "minimum": 1, "maximum": 999_999_999},
}


def postprocess(result, generator, request, public):
    """Error responses that can happen (with their headers); integer ids; strict request bodies;
    the brief form."""
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["name"] in INTEGER_PATH_PARAMETERS:
                    parameter["schema"] = dict(INTEGER_PATH_PARAMETERS[parameter["name"]])
            responses = operation.get("responses", {})
            keep = _applicable_errors(method.upper(), operation)
            for code in [c for c in responses if c in ERRORS and c not in keep]:
                del responses[code]
            for code, headers in ERROR_HEADERS.items():
                if code in responses:
                    responses[code].setdefault("headers", {}).update(headers)
    schemas = result.get("components", {}).get("schemas", {})
    # Unknown fields are refused (400), so say so: generated clients and fuzzers then agree.
    for name in _strict_component_names() & set(schemas):
        schemas[name]["additionalProperties"] = False
    # Brief records allow no other properties, so `oneOf` full-or-brief is unambiguous.
    if "RecordBrief" in schemas:
        schemas["RecordBrief"]["additionalProperties"] = False
    return result
