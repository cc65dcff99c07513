"""What the MCP tools and resources do, in Django's sync world: each takes the principal and
the tool's arguments, calls the same selectors and services as the REST API, and returns the
markdown to send (with provenance markers) and the bundle to log (or None). `server` declares
the tools; `auth.run_tool` runs these as the caller.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence

import mcp_types
from django.utils import timezone

from apps.accounts.models import ApiToken
from apps.core.errors import ServiceError
from apps.core.replica import on_replica
from apps.records import selectors as record_selectors
from apps.records.models import Record
from apps.retrieval import bundle as bundle_module
from apps.retrieval import services as retrieval_services
from apps.retrieval import tokens
from apps.retrieval.bundle import (
    ContextParams,
    context_bundle,
    packing_texts,
    parse_params,
    render_block,
)
from apps.retrieval.bundle import items as bundle_items

RESOURCES_PAGE = 100

LEFT_OUT = "Left out (token budget or superseded): "


@functools.cache
def _left_out_reserve() -> int:
    """Tokens kept free in the budget for the line naming what was left out (its shortest
    form)."""
    return tokens.count_after_newline(f"{LEFT_OUT}9999 records.")


def _left_out_line(omitted: list[dict], room: int) -> str:
    """As many of the left-out keys as fit into `room` tokens, then how many more; "" if even
    the count does not fit."""
    keys = [o["key"] for o in omitted]
    for shown in range(len(keys), -1, -1):
        rest = len(keys) - shown
        if shown == 0:
            line = f"{LEFT_OUT}{rest} record{'s' if rest != 1 else ''}."
        elif rest:
            line = f"{LEFT_OUT}{', '.join(keys[:shown])} and {rest} more."
        else:
            line = f"{LEFT_OUT}{', '.join(keys)}."
        if len(line) <= room * bundle_module.MAX_CHARS_PER_TOKEN and (
            tokens.count_after_newline(line) <= room
        ):
            return line
    return ""


def search(
    principal: ApiToken,
    *,
    query: str,
    paths: list[str] | None,
    max_tokens: int,
    space: str | None,
    kinds: Sequence[str] = (),
    as_of: str | None = None,
) -> tuple[str, dict]:
    data = {"q": query, "paths": list(paths or []), "max_tokens": max_tokens, "kinds": list(kinds)}
    if space:
        data["spaces"] = [space]
    if as_of:
        data["as_of"] = as_of
    params: ContextParams = parse_params(data)
    # The text returned never exceeds max_tokens: the records are packed into the budget less
    # room for the "Left out" line, which then names as many keys as fit.
    packed = dataclasses.replace(params, max_tokens=params.max_tokens - _left_out_reserve())
    # Read-only: served by the read replica when one is configured (DATABASE_REPLICA_URL).
    bundle = on_replica(context_bundle, principal=principal, params=packed)
    text = bundle["markdown"]
    if bundle["omitted"]:
        used = bundle["tokens_used"]  # exact (apps.retrieval.tokens)
        line = _left_out_line(bundle["omitted"], params.max_tokens - used)
        if line and (tokens.is_additive() or tokens.count(text + line) <= params.max_tokens):
            text += line
    # Kept as sent, for get_bundle and GET /api/v1/context/bundles/<id> (apps.retrieval.usage).
    bundle["_served_markdown"] = text
    bundle["_served_format"] = "markdown"
    return text, bundle


def stored_bundle(principal: ApiToken, *, bundle_id: str) -> tuple[str, None]:
    _check_text("bundle_id", bundle_id, 40)
    stored = bundle_module.bundle_fetch(principal=principal, bundle_id=(bundle_id or "").strip())
    if stored is None:
        raise ServiceError(f"No context bundle {bundle_id!r} is visible to this token.")
    return stored.markdown, None


def guardrails(principal: ApiToken, *, paths: list[str], space: str | None) -> tuple[str, dict]:
    if not paths:
        raise ServiceError("Give at least one file path.")
    text, bundle = search(
        principal,
        query="",
        paths=paths,
        max_tokens=8000,
        space=space,
        kinds=(Record.Kind.GUARDRAIL, Record.Kind.CONSTRAINT),
    )
    from apps.agents.mcp import escalation_contacts_text

    return text + escalation_contacts_text(principal, bundle), bundle


def _check_text(name: str, value: str | None, limit: int) -> None:
    if value is not None and (len(value) > limit or "\x00" in value):
        raise ServiceError(f"`{name}` must be at most {limit} characters, without NUL.")


def record_markdown(principal: ApiToken, *, key: str, space: str | None) -> tuple[str, dict]:
    """One record in full (get_record, contextkb:// resources), its item built as a context
    bundle builds it (apps.retrieval.bundle.items): the same freshness reasons, worded for the
    reader, the same owner, URL and revision."""
    record = _visible_record(principal, key=key, space=space)
    now = timezone.now()
    rows = bundle_items.record_rows({record.pk}, [record.space_id], now)
    if record.pk not in rows:  # archived since it was looked up
        raise ServiceError(f"No record {record.key!r} is visible to this token.")
    bundle_items.present_reasons(principal, rows)
    row = rows[record.pk]
    item = bundle_items.record_item(row, now, score=1.0, note=_superseded_note(principal, record))
    text = packing_texts(row["summary"], row["body"])["full"]
    bundle = {
        "query": f"get_record {record.key}",
        "paths": [],
        "_space_ids": [record.space_id],
        "items": [{"id": record.pk, "key": record.key, "score": 1.0}],
    }
    return render_block(item, text), bundle


def _visible_record(principal: ApiToken, *, key: str, space: str | None) -> Record:
    _check_text("key", key, 40)
    _check_text("space", space, 60)
    key = (key or "").strip().upper()
    qs = record_selectors.record_list_visible(principal=principal).filter(key__iexact=key)
    if space:
        qs = qs.filter(space__slug=space)
    matches = list(qs[:5])
    if not matches:
        raise ServiceError(f"No record {key!r} is visible to this token.")
    if len(matches) > 1:
        spaces = ", ".join(sorted(r.space.slug for r in matches))
        raise ServiceError(f"{key} exists in several spaces ({spaces}); pass `space`.")
    return matches[0]


def _superseded_note(principal: ApiToken, record: Record) -> str:
    if record.status != Record.Status.SUPERSEDED:
        return ""
    successor = record_selectors.successor_for(principal=principal, record=record)
    if isinstance(successor, Record):
        return f"Superseded by {successor.key} ({successor.title}); do not rely on this record."
    if successor is not None:
        return f"Superseded by {successor}; do not rely on this record."
    return ""


def report_gap(
    principal: ApiToken, *, query: str, note: str, space: str | None
) -> tuple[str, None]:
    from apps.accounts.models import Space

    _check_text("space", space, 60)
    target = None
    if space:
        target = Space.objects.visible_to(principal).filter(slug=space).first()
        if target is None:
            raise ServiceError(f"Space {space!r} not found.")
    gaps = retrieval_services.gap_report(principal=principal, query=query, note=note, space=target)
    counts = ", ".join(f"{g.space.slug}: asked {g.count}×" for g in gaps)
    return f"Thanks: the gap was recorded ({counts}). Owners will see it on the gaps page.", None


def assess_change(
    principal: ApiToken,
    *,
    paths: list[str] | None,
    title: str | None,
    description: str | None,
    space: str | None,
) -> tuple[str, None]:
    from apps.records import assess

    _check_text("space", space, 60)
    result = on_replica(
        assess.assess_change,
        principal=principal,
        paths=paths or [],
        spaces=[space] if space else [],
        title=title or "",
        description=description or "",
    )
    return assess.assessment_markdown(result), None


def list_records(
    principal: ApiToken, *, cursor: str | None
) -> tuple[tuple[list[mcp_types.Resource], str | None], None]:
    """One page of the records the principal may see, as MCP resources (cursor = offset)."""
    offset = int(cursor) if cursor and cursor.isdigit() and len(cursor) < 10 else 0
    rows = list(
        record_selectors.record_list_visible(principal=principal)
        .order_by("space__slug", "kind", "number")
        .values_list("space__slug", "key", "title", "summary")[offset : offset + RESOURCES_PAGE + 1]
    )
    resources = [
        mcp_types.Resource(
            uri=f"contextkb://{slug}/{key}",
            name=key,
            title=f"{key}: {title}",
            description=summary or None,
            mime_type="text/markdown",
        )
        for slug, key, title, summary in rows[:RESOURCES_PAGE]
    ]
    more = len(rows) > RESOURCES_PAGE
    return (resources, str(offset + RESOURCES_PAGE) if more else None), None
