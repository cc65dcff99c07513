"""A strict JSON parser: UTF-8 only, size-limited, no NaN/Infinity, no NUL or lone surrogates."""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework import exceptions, parsers

from apps.api.exceptions import PayloadTooLarge


def max_body_bytes() -> int:
    return settings.API_MAX_BODY_BYTES


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _check_strings(value, depth: int = 0) -> None:
    """PostgreSQL text cannot hold NUL, and lone surrogates cannot be encoded: refuse both."""
    if depth > 50:
        raise exceptions.ParseError("JSON nested too deeply.")
    if isinstance(value, str):
        if "\x00" in value:
            raise exceptions.ParseError("Strings must not contain NUL characters.")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise exceptions.ParseError("Strings must be valid Unicode.") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, depth + 1)
            _check_strings(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, depth + 1)


class StrictJSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = max_body_bytes()
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        try:
            if declared and int(declared) > limit:
                raise PayloadTooLarge(f"The request body is limited to {limit:,} bytes.")
        except ValueError:
            raise exceptions.ParseError("Invalid Content-Length.") from None
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise PayloadTooLarge(f"The request body is limited to {limit:,} bytes.")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise exceptions.ParseError("The request body is not valid UTF-8.") from None
        try:
            data = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise exceptions.ParseError(f"Malformed JSON: {exc}") from None
        _check_strings(data)
        return data
