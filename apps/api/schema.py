"""OpenAPI details drf-spectacular cannot infer: the bearer scheme and the error responses."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiResponse

from apps.api.serializers import ErrorSerializer


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
}
READ_ERRORS = ("400", "401", "403", "404", "406", "429")
WRITE_ERRORS = (*READ_ERRORS, "409", "412", "413", "415")


class AutoSchema(SpectacularAutoSchema):
    """Adds the error envelope to every operation, for every status the API can answer."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = list(READ_ERRORS if self.method in ("GET", "HEAD") else WRITE_ERRORS)
        if self.method in ("PUT", "PATCH"):
            codes.append("428")
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(
                    OpenApiResponse(response=ErrorSerializer, description=ERRORS[code]),
                    code,
                    direction=direction,
                )
        return dict(sorted(responses.items()))


def postprocess(result, generator, request, public):
    """Brief records allow no other properties, so `oneOf` full-or-brief is unambiguous."""
    schemas = result.get("components", {}).get("schemas", {})
    if "RecordBrief" in schemas:
        schemas["RecordBrief"]["additionalProperties"] = False
    return result
