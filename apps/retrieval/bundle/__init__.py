"""Context bundles: ranked, current, cited records packed into a token budget.

By concern: `params` (the request, validated), `candidates` (successors of superseded records,
revisions as of a moment), `items` (one record as a bundle item: row, freshness reasons, owner,
URL; also what MCP's get_record shows), `packing` (the token budget), `render` (markdown and
JSON) and `context` (`context_bundle()`, which the REST endpoint and the MCP tools call, and
stored bundles). Other apps import from here.
"""

from apps.retrieval.bundle.context import bundle_fetch, context_bundle, new_bundle_id
from apps.retrieval.bundle.items import freshness_reasons, owner_of, record_url
from apps.retrieval.bundle.packing import (
    MAX_CHARS_PER_TOKEN,
    MIN_BLOCK_TOKENS,
    counts_stamp,
    packing_texts,
    text_token_counts,
)
from apps.retrieval.bundle.params import (
    FORMATS,
    MAX_PATHS,
    ContextParams,
    parse_params,
    resolve_spaces,
)
from apps.retrieval.bundle.render import escape_markdown, json_body, render_block, render_json

__all__ = [
    "FORMATS",
    "MAX_CHARS_PER_TOKEN",
    "MAX_PATHS",
    "MIN_BLOCK_TOKENS",
    "ContextParams",
    "bundle_fetch",
    "context_bundle",
    "counts_stamp",
    "escape_markdown",
    "freshness_reasons",
    "json_body",
    "new_bundle_id",
    "owner_of",
    "packing_texts",
    "parse_params",
    "record_url",
    "render_block",
    "render_json",
    "resolve_spaces",
    "text_token_counts",
]
