"""Input rules of the record services: every door (web, API, import, MCP, agents) gets the same
checks, and a refusal names each bad field (InvalidInput details)."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ImproperlyConfigured, ValidationError

from apps.accounts.models import Space, Team, User
from apps.core.errors import InvalidInput
from apps.core.text import strip_invisible
from apps.records import anchors as anchors_mod
from apps.records import fields as record_fields
from apps.records import owners
from apps.records.models import Record

# Fields a person edits (a revision snapshots all of them, plus a few derived ones), and the
# "material" ones: changing one makes records that depend on this one suspect and resolves this
# record's own open suspect reasons. Both come from the one table of fields (apps.records.fields).
EDITABLE_FIELDS = record_fields.EDITABLE_FIELDS
MATERIAL_FIELDS = record_fields.MATERIAL_FIELDS


def _bound(limit: int | None) -> int:
    """A limit from the field table, which every field the services bound has."""
    if limit is None:
        raise ImproperlyConfigured("A record field the services bound has no limit.")
    return limit


MAX_TAGS = _bound(record_fields.BY_NAME["tags"].max_items)
MAX_TAG_CHARS = _bound(record_fields.BY_NAME["tags"].max_length)
MAX_ANCHORS = _bound(record_fields.BY_NAME["anchors"].max_items)
MAX_ANCHOR_CHARS = _bound(record_fields.BY_NAME["anchors"].max_length)
MAX_BODY_CHARS = _bound(record_fields.BY_NAME["body"].max_length)
# Tags are short labels people filter by; anything else (quotes, angle brackets…) is a typo.
TAG_RE = re.compile(r"[\w][\w .:/+#-]*")


def tag_problem(tags: Iterable[str]) -> str:
    """Why these (cleaned, lower-cased) tags cannot be saved ("" when they can): the one rule
    for the web editor, the API, imports and MCP."""
    bad = [t for t in tags if not TAG_RE.fullmatch(t)]
    if not bad:
        return ""
    shown = ", ".join(f"“{t[:30]}”" for t in bad[:3])
    return f"Tags use letters, digits, spaces and - _ . / : + # only; fix {shown}."


def _clean_list(values: Iterable[str] | None, *, field: str, limit: int, max_len: int) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise InvalidInput(f"{field} must be a list of strings.", details={field: ["Not a list."]})
    cleaned: list[str] = []
    for value in values:
        if not isinstance(value, str):
            raise InvalidInput(
                f"{field} must be a list of strings.", details={field: ["Not a string."]}
            )
        value = strip_invisible(value).strip()
        if not value:
            continue
        if len(value) > max_len:
            raise InvalidInput(
                f"Each {field[:-1]} must be at most {max_len} characters.",
                details={field: [f"{value[:40]}… is longer than {max_len} characters."]},
            )
        if value not in cleaned:
            cleaned.append(value)
    if len(cleaned) > limit:
        raise InvalidInput(
            f"At most {limit} {field} are allowed.", details={field: [f"More than {limit}."]}
        )
    return cleaned


def normalise(
    fields: dict[str, Any], *, space: Space, current_owner_id: int | None = None
) -> dict[str, Any]:
    """Type- and range-check editable fields; raises InvalidInput naming each bad field.

    A deactivated user cannot become an owner (they would get no reminders, and the next sweep
    would orphan the record again); one who already owns the record may stay while other fields
    are edited."""
    out = dict(fields)
    errors: dict[str, list[str]] = {}
    _clean_text_fields(out, errors)
    _clean_list_fields(out, errors)
    _clean_date_fields(out, errors)
    _check_owners(out, errors, space=space, current_owner_id=current_owner_id)
    if errors:
        raise InvalidInput("The record is not valid.", details=errors)
    return out


def _clean_text_fields(out: dict[str, Any], errors: dict[str, list[str]]) -> None:
    for name in record_fields.TEXT_FIELDS:
        if name not in out:
            continue
        value = "" if out[name] is None else out[name]
        if not isinstance(value, str):
            errors[name] = ["Must be text."]
            continue
        # Short fields lose bidirectional controls and invisible characters (apps.core.text):
        # a title must read as its bytes. The body keeps them; outputs reveal them.
        out[name] = strip_invisible(value).strip() if name != "body" else value
    if "title" in out and not errors.get("title") and not out["title"]:
        errors["title"] = ["A title is required."]
    if "summary" in out and isinstance(out["summary"], str) and "\n" in out["summary"]:
        errors["summary"] = ["The summary is one line."]
    body = out.get("body")
    if isinstance(body, str) and "\x00" in body:
        errors["body"] = ["The body contains a NUL character."]
    elif isinstance(body, str) and len(body) > MAX_BODY_CHARS:
        over = len(body) - MAX_BODY_CHARS
        errors["body"] = [
            f"The body is limited to {MAX_BODY_CHARS:,} characters; this one is {over:,} over. "
            "Move long material to a linked record or a document and link to it."
        ]


def _clean_list_fields(out: dict[str, Any], errors: dict[str, list[str]]) -> None:
    # A value that is no list of short strings stops the list checks: its details are the errors.
    try:
        if "tags" in out:
            _clean_tags(out, errors)
        if "anchors" in out:
            _clean_anchors(out, errors)
    except InvalidInput as exc:
        errors.update(exc.details)


def _clean_tags(out: dict[str, Any], errors: dict[str, list[str]]) -> None:
    tags = out["tags"]
    if isinstance(tags, list | tuple):
        # Lower-case before de-duplicating, so "Events, events" is one tag.
        tags = [t.lower() if isinstance(t, str) else t for t in tags]
    out["tags"] = _clean_list(tags, field="tags", limit=MAX_TAGS, max_len=MAX_TAG_CHARS)
    if problem := tag_problem(out["tags"]):
        errors["tags"] = [problem]


def _clean_anchors(out: dict[str, Any], errors: dict[str, list[str]]) -> None:
    anchors = _clean_list(
        out["anchors"], field="anchors", limit=MAX_ANCHORS, max_len=MAX_ANCHOR_CHARS
    )
    try:
        # Paths from the repository root: "/x" and "x\y" are normalised, paths on one
        # computer are refused (anchors.clean_anchor; the web form shows its warnings).
        out["anchors"] = anchors_mod.clean_anchors(anchors)[0]
    except anchors_mod.AnchorRefused as exc:
        errors["anchors"] = [str(exc)]


def _clean_date_fields(out: dict[str, Any], errors: dict[str, list[str]]) -> None:
    for name in record_fields.DATE_FIELDS:
        value = out.get(name)
        if value in ("", None):
            if name in out:
                out[name] = None
            continue
        if isinstance(value, str):
            try:
                out[name] = dt.date.fromisoformat(value)
            except ValueError:
                errors[name] = ["Use a date like 2026-01-31."]
        elif isinstance(value, dt.datetime) or not isinstance(value, dt.date):
            errors[name] = ["Use a date like 2026-01-31."]


def _check_owners(
    out: dict[str, Any],
    errors: dict[str, list[str]],
    *,
    space: Space,
    current_owner_id: int | None,
) -> None:
    owner = out.get("owner_user")
    if owner is not None and not isinstance(owner, User):
        errors["owner_user"] = ["Unknown user."]
    elif owner is not None and (
        refused := owners.problem(owner, space=space, current_owner_id=current_owner_id)
    ):
        errors["owner_user"] = [refused]
    if out.get("owner_team") is not None and not isinstance(out["owner_team"], Team):
        errors["owner_team"] = ["Unknown team."]
    if out.get("owner_user") is not None and out.get("owner_team") is not None:
        errors["owner_team"] = ["A record is owned by a user or by a team, not both."]


def full_clean(record: Record) -> None:
    """Let the model check choices and lengths; convert to InvalidInput."""
    if record.kind != Record.Kind.DECISION and (record.reversibility or record.impact):
        raise InvalidInput(
            "Reversibility and impact apply to decisions only.",
            details={"reversibility": ["Only decisions have a reversibility and impact."]},
        )
    try:
        record.full_clean(
            exclude=["space", "number", "key", "next_review_at", "created_by", "updated_by"],
            validate_unique=False,
            validate_constraints=False,
        )
    except ValidationError as exc:
        raise InvalidInput("The record is not valid.", details=exc.message_dict) from None
