"""Context bundles: ranked, current, cited records packed into a token budget.

`context_bundle()` is what the REST endpoint and the MCP tools call. It runs a bounded number of
SQL queries whatever the result size: visible spaces, the candidate search, successors of
superseded candidates (only when there are any), and the records with owners, spaces, stored
token counts and open suspect reasons in one query.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets

from django.utils import timezone

from apps.accounts import access
from apps.retrieval import search, tokens
from apps.retrieval.bundle import candidates, packing
from apps.retrieval.bundle.params import ContextParams, resolve_spaces
from apps.retrieval.bundle.render import render_header, short_header
from apps.retrieval.models import ContextBundle


def new_bundle_id() -> str:
    """A bundle's id: 80 random bits as 20 hex digits (short to cite, cheap in a budget)."""
    return secrets.token_hex(10)


def _method(params: ContextParams, result: search.SearchResult, mode: str) -> str:
    if not params.query:
        return "path anchors"
    if mode != "hybrid":
        return mode
    if result.lexical_only:
        return "full-text (vectors are asked only when no word matches)"
    return "hybrid" if result.used_vectors else "full-text (no embeddings available)"


def context_bundle(
    *, principal, params: ContextParams, mode: str = "hybrid", bundle_id: str | None = None
) -> dict:
    """The ranked, budgeted bundle for a tool (see the module docstring), under a new id.

    With `params.as_of`, the records are those that existed then, as their revision in force
    then reads; the candidates and their ranking are today's search (docs/mcp.md)."""
    now = timezone.now()
    bundle_id = bundle_id or new_bundle_id()
    spaces = resolve_spaces(principal, params.spaces)
    found = candidates.find(
        principal=principal, params=params, space_ids=list(spaces), mode=mode, now=now
    )
    header, used = _header(params, now, bundle_id)
    packed = packing.pack(found.ordered, used=used, max_tokens=params.max_tokens, now=now)
    omitted = [*found.omitted, *packed.omitted, *found.below_floor]
    markdown, used = packing.fit(header, packed, omitted, params.max_tokens)
    return {
        "bundle_id": bundle_id,
        "query": params.query,
        "paths": params.paths,
        "spaces": sorted(s.slug for s in spaces.values()),
        "generated_at": now.isoformat(),
        "as_of": None if params.as_of is None else params.as_of.isoformat(),
        "max_tokens": params.max_tokens,
        # Exact: the sum of the header's and the blocks' counts (apps.retrieval.tokens).
        "tokens_used": used,
        "token_counting": tokens.counting_method(),
        "retrieval": _method(params, found.result, mode),
        "items": packed.items,
        "omitted": omitted,
        "markdown": markdown,
        "_best_match": found.result.best_match,
        "_space_ids": list(spaces),
    }


def _header(params: ContextParams, now: dt.datetime, bundle_id: str) -> tuple[str, int]:
    """The bundle's header and its token count."""
    header = render_header(params, now, bundle_id)
    used = tokens.count(header)
    if used > params.max_tokens // 4:
        # A tight budget goes to the records, not to the preamble.
        header = short_header(bundle_id)
        used = tokens.count(header)
    return header, used


BUNDLE_ID = re.compile(r"[0-9a-f]{20}")


def bundle_fetch(*, principal, bundle_id: str):
    """A stored bundle (apps.retrieval.models.ContextBundle) the principal may read, or None.

    Readable by whoever can see every space it was drawn from: its records and the titles it
    names as left out all come from those spaces. One who cannot (an outsider, a token scoped to
    fewer spaces, a member who has left one) gets None, as for an id that does not exist."""
    if not isinstance(bundle_id, str) or not BUNDLE_ID.fullmatch(bundle_id):
        return None
    stored = ContextBundle.objects.select_related("request").filter(pk=bundle_id).first()
    if stored is None:
        return None
    space_ids = stored.request.space_ids
    if space_ids:
        allowed = access.can_view_spaces(principal, space_ids)
    else:  # drawn from no space at all: only its query is in it, for the one who asked
        user = access.user_of(principal)
        allowed = user is not None and user.pk == stored.request.user_id
    return stored if allowed else None
