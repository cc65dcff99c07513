"""Context bundles: ranked, current, cited records packed into a token budget.

`context_bundle()` is what the REST endpoint and the MCP tools call. It runs a bounded number of
SQL queries whatever the result size: visible spaces, the candidate search, successors of
superseded candidates (only when there are any), and the records with owners, spaces, stored
token counts and open suspect reasons in one query.
"""

from __future__ import annotations

import re
import secrets

from django.utils import timezone

from apps.accounts import access
from apps.core.text import reveal_invisible
from apps.records import anchors as record_anchors
from apps.records.models import Record
from apps.retrieval import search, tokens
from apps.retrieval.bundle.candidates import (
    _as_it_read,
    _as_of_revisions,
    _hits_as_of,
    _omission,
    _successors,
)
from apps.retrieval.bundle.items import _date, _owner, _present_reasons, _reasons, _rows, _url
from apps.retrieval.bundle.packing import _choose_form
from apps.retrieval.bundle.params import ContextParams, resolve_spaces
from apps.retrieval.bundle.render import _head_line, render_block, render_header, short_header
from apps.retrieval.models import ContextBundle

# Ranked candidates considered for a bundle (path-anchored guardrails and constraints always
# come first); at the default budget about a dozen fit.
CANDIDATES = 40


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
    as_of = params.as_of
    result = search.hybrid_search(
        space_ids=list(spaces),
        query=params.query,
        paths=params.paths,
        kinds=params.kinds,
        include_stale=params.include_stale,
        mode=mode,
        # Some of today's candidates may not have existed then.
        limit=CANDIDATES if as_of is None else 2 * CANDIDATES,
    )
    hits = result.hits
    weak = result.below_floor
    revisions: dict[int, dict] | None = None
    if as_of is not None:
        revisions = _as_of_revisions({h.record_id for h in [*hits, *weak]}, as_of)
        paths = [record_anchors.normalise_path(p) for p in params.paths if p.strip()]
        hits = _hits_as_of(hits, revisions, paths)[:CANDIDATES]
        weak = [h for h in weak if h.record_id in revisions]
    superseded = [h.record_id for h in hits if h.status == Record.Status.SUPERSEDED]
    successor_of = _successors(superseded, as_of)
    if revisions is not None and successor_of:
        revisions.update(_as_of_revisions(set(successor_of.values()) - set(revisions), as_of))
    rows = _rows(
        {h.record_id for h in [*hits, *weak]} | set(successor_of.values()), list(spaces), now
    )
    if revisions is not None:
        rows = {
            rid: _as_it_read(row, revisions[rid]) for rid, row in rows.items() if rid in revisions
        }
    _present_reasons(principal, rows)

    ordered: list[tuple[dict, search.Hit, str]] = []
    omitted: list[dict] = []
    seen: set[int] = set()
    for hit in hits:
        row = rows.get(hit.record_id)
        if row is None:
            continue
        note = ""
        if row["status"] == Record.Status.SUPERSEDED:
            successor = rows.get(successor_of.get(row["id"], -1))
            if successor is None or successor["status"] == Record.Status.SUPERSEDED:
                omitted.append(
                    _omission(row, "superseded (its successor is archived or not visible to you)")
                )
                continue
            if not params.include_stale and successor["freshness"] in ("stale", "suspect"):
                continue
            if params.kinds and successor["kind"] not in params.kinds:
                continue
            note = (
                f"Replaces {row['key']} ({row['title']}), which matched your request but was "
                f"superseded by {successor['key']}; do not rely on {row['key']}."
            )
            row = successor
        if row["id"] in seen:
            continue
        seen.add(row["id"])
        ordered.append((row, hit, note))

    header = render_header(params, now, bundle_id)
    used = tokens.count(header)
    if used > params.max_tokens // 4:
        # A tight budget goes to the records, not to the preamble.
        header = short_header(bundle_id)
        used = tokens.count(header)
    items: list[dict] = []
    blocks: list[str] = []
    for row, hit, note in ordered:
        item = {
            "id": row["id"],
            "key": row["key"],
            "space": row["space_slug"],
            "kind": row["kind"],
            "title": reveal_invisible(row["title"]),
            "status": row["status"],
            # Which version of the record this is (its ETag) and its revision number.
            "version": row["version"],
            "revision": row["revision"],
            "owner": _owner(row),
            "url": _url(row["space_slug"], row["key"]),
            "score": hit.score,
            "freshness": row["freshness"],
            "freshness_reasons": _reasons(row, row["open_reasons"], now),
            "last_verified_at": _date(row["last_verified_at"]),
            "anchors": list(row["anchors"]),
            "why": [
                w
                for w, on in (
                    ("anchored to your paths", hit.anchored),
                    ("full-text match", hit.fts_rank is not None),
                    ("semantic match", hit.vec_rank is not None),
                )
                if on
            ],
            "note": note,
        }
        head = _head_line(item)
        chosen = _choose_form(row, item, head, params.max_tokens - used)
        if chosen is None:
            omitted.append(_omission(row, "token budget", hit.score))
            continue
        form, text, cost = chosen
        # JSON readers get the text as the markdown shows it: bidirectional controls and
        # invisible characters written as <U+XXXX> (markdown escapes `text` in render_block).
        item.update({"content": form, "text": reveal_invisible(text), "tokens": cost})
        items.append(item)
        blocks.append(render_block(item, text, head))
        used += cost

    # The weakest matches, left out by the relevance floor (apps.retrieval.search).
    omitted.extend(
        _omission(rows[h.record_id], "below the relevance floor", h.score)
        for h in weak
        if h.record_id in rows
    )
    markdown = header + "".join(blocks)
    if not tokens.is_additive():
        # A tokenizer whose tokens can span lines: block counts are only estimates, so the
        # whole document is counted and trimmed.
        while items and tokens.count(markdown) > params.max_tokens:
            dropped = items.pop()
            blocks.pop()
            omitted.append(
                {
                    "key": dropped["key"],
                    "space": dropped["space"],
                    "title": dropped["title"],
                    "score": dropped["score"],
                    "reason": "token budget",
                }
            )
            markdown = header + "".join(blocks)
        used = tokens.count(markdown)
    return {
        "bundle_id": bundle_id,
        "query": params.query,
        "paths": params.paths,
        "spaces": sorted(s.slug for s in spaces.values()),
        "generated_at": now.isoformat(),
        "as_of": None if as_of is None else as_of.isoformat(),
        "max_tokens": params.max_tokens,
        # Exact: the sum of the header's and the blocks' counts (apps.retrieval.tokens).
        "tokens_used": used,
        "token_counting": tokens.counting_method(),
        "retrieval": _method(params, result, mode),
        "items": items,
        "omitted": omitted,
        "markdown": markdown,
        "_best_match": result.best_match,
        "_space_ids": list(spaces),
    }


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
