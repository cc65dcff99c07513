"""The parameters of a context request: parsed and validated, and the spaces it names resolved
against what the caller may see."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils import timezone

from apps.accounts import access
from apps.accounts.models import Space
from apps.core.errors import InvalidInput
from apps.records.models import Record

DEFAULT_MAX_TOKENS = 4000
MIN_TOKENS = 50
MAX_TOKENS = 200_000
MAX_QUERY_CHARS = 2000
MAX_PATHS = 50
FORMATS = ("json", "markdown")


@dataclass
class ContextParams:
    query: str = ""
    paths: list[str] = field(default_factory=list)
    spaces: list[str] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    max_tokens: int = DEFAULT_MAX_TOKENS
    format: str = "json"
    include_stale: bool = True
    # Answer from the revisions in force at this moment (see `_as_of_revisions`); None = now.
    as_of: dt.datetime | None = None


def _as_list(value, name: str) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{name} must be a list of strings.", details={name: ["Not a list."]})
    return [v.strip() for v in value if v.strip()]


def _as_bool(value, name: str, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
        return False
    raise InvalidInput(f"{name} must be true or false.", details={name: ["Not a boolean."]})


_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_as_of(value, now: dt.datetime | None = None) -> dt.datetime | None:
    """`as_of` as an aware datetime, or None when not given. A date means the end of that day
    (UTC), so `as_of=2025-03-01` includes that day's edits; a datetime without an offset is UTC;
    today's date means now. A moment in the future is an error (InvalidInput)."""
    if value is None or value == "":
        return None
    now = now or timezone.now()
    bad = InvalidInput(
        "as_of must be an ISO 8601 date or date and time, e.g. 2025-03-01 or 2025-03-01T12:00:00Z.",
        details={"as_of": ["Not a date or date and time."]},
    )
    if not isinstance(value, str) or len(value) > 40:
        raise bad
    text = value.strip()
    try:
        if _DATE_ONLY.fullmatch(text):
            day = dt.date.fromisoformat(text)
            if day > now.astimezone(dt.UTC).date():
                raise InvalidInput(
                    "as_of is in the future.",
                    details={"as_of": ["In the future: give a date up to today (UTC)."]},
                )
            moment = dt.datetime.combine(day, dt.time.max, tzinfo=dt.UTC)
        else:
            moment = dt.datetime.fromisoformat(text.replace("z", "Z"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=dt.UTC)
            if moment > now:
                raise InvalidInput(
                    "as_of is in the future.",
                    details={"as_of": ["In the future: give a time up to now."]},
                )
    except (ValueError, OverflowError):
        raise bad from None
    return min(moment, now)


def _checked[T](errors: dict[str, list[str]], parse: Callable[[], T], default: T) -> T:
    """`parse()`, or `default` with its InvalidInput details added to `errors`."""
    try:
        return parse()
    except InvalidInput as exc:
        errors.update(exc.details)
        return default


def _as_query(data) -> str:
    query = data.get("q", data.get("query", "")) or ""
    problem = None
    if not isinstance(query, str):
        problem = "Must be text."
    elif len(query) > MAX_QUERY_CHARS:
        problem = f"At most {MAX_QUERY_CHARS} characters."
    elif "\x00" in query:
        problem = "Contains a NUL character."
    if problem:
        raise InvalidInput(problem, details={"q": [problem]})
    return query.strip()


def _list_param(data, name: str) -> list[str]:
    raw = data.getlist(name) if hasattr(data, "getlist") else data.get(name)
    if isinstance(raw, list) and len(raw) == 1 and isinstance(raw[0], str):
        raw = raw[0]
    return _as_list(raw, name)


def _read_lists(data, params: ContextParams, errors: dict[str, list[str]]) -> None:
    params.paths = _checked(errors, lambda: _list_param(data, "paths"), [])
    params.spaces = _checked(errors, lambda: _list_param(data, "spaces"), [])
    params.kinds = _checked(errors, lambda: _list_param(data, "kinds"), [])
    # `space` (singular, as agents.md, the gaps endpoint and the MCP tools spell it) is an
    # alias of `spaces`: never ignored, so a tool that uses it is not searching everything.
    alias: list[str] = _checked(errors, lambda: _list_param(data, "space"), [])
    params.spaces += [v for v in alias if v not in params.spaces]
    if len(params.paths) > MAX_PATHS or any(len(p) > 500 for p in params.paths):
        errors["paths"] = [f"At most {MAX_PATHS} paths of at most 500 characters."]
    for name in ("paths", "spaces", "kinds"):
        if any("\x00" in v for v in getattr(params, name)):
            errors[name] = ["Contains a NUL character."]
    bad_kinds = [k for k in params.kinds if k not in Record.Kind.values]
    if bad_kinds:
        errors["kinds"] = [
            f"Unknown kind(s): {', '.join(bad_kinds)}; use {', '.join(Record.Kind.values)}."
        ]


def _as_max_tokens(value) -> int:
    if value in (None, ""):
        return DEFAULT_MAX_TOKENS
    bad = InvalidInput(
        "max_tokens is out of range.",
        details={"max_tokens": [f"An integer from {MIN_TOKENS} to {MAX_TOKENS}."]},
    )
    if isinstance(value, bool | float):
        raise bad
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise bad from None
    if not MIN_TOKENS <= number <= MAX_TOKENS:
        raise bad
    return number


def _as_format(value) -> str:
    fmt = value or "json"
    if fmt not in FORMATS:
        raise InvalidInput("Unknown format.", details={"format": ["Use json or markdown."]})
    return fmt


def parse_params(data) -> ContextParams:
    """Validate request parameters (query string or JSON body); InvalidInput names each field."""
    errors: dict[str, list[str]] = {}
    params = ContextParams(query=_checked(errors, lambda: _as_query(data), ""))
    _read_lists(data, params, errors)
    params.max_tokens = _checked(
        errors, lambda: _as_max_tokens(data.get("max_tokens")), DEFAULT_MAX_TOKENS
    )
    params.format = _checked(errors, lambda: _as_format(data.get("format")), "json")
    params.include_stale = _checked(
        errors, lambda: _as_bool(data.get("include_stale"), "include_stale", True), True
    )
    params.as_of = _checked(errors, lambda: parse_as_of(data.get("as_of")), None)
    if not errors and not params.query and not params.paths:
        errors["q"] = ["Give a query (q), file paths (paths), or both."]
    if errors:
        raise InvalidInput("The context request is not valid.", details=errors)
    return params


def resolve_spaces(principal, slugs: list[str]) -> dict[int, Space]:
    """Visible spaces (all, or the named ones); an unknown or hidden slug is an error."""
    spaces = {
        pk: Space(pk=pk, slug=slug, name=name)
        for pk, slug, name in access.visible_space_rows(principal)
    }
    if not slugs:
        return spaces
    by_slug = {s.slug: s for s in spaces.values()}
    missing = [slug for slug in slugs if slug not in by_slug]
    if missing:
        raise InvalidInput(
            "Unknown space(s): " + ", ".join(missing) + ".",
            details={"spaces": [f"{slug!r} does not exist or is not visible." for slug in missing]},
        )
    return {by_slug[slug].pk: by_slug[slug] for slug in slugs}
