"""Packing records into a token budget: the richest form of each record that fits (whole
record, summary, an excerpt of the body, title only), counted exactly, and the token counts
stored with each record's vector so that requests need not count them."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field

from apps.core.text import reveal_invisible
from apps.retrieval import search, tokens
from apps.retrieval.bundle import items
from apps.retrieval.bundle.render import (
    CLOSE,
    LABELLED_FRESHNESS,
    escape_markdown,
    head_line,
    label_lines,
    render_block,
    title_line,
)


def packing_texts(summary: str, body: str) -> dict[str, str]:
    """The texts a record can be packed with, richest first: whole record, then summary."""
    body = (body or "").strip()
    texts = {"full": "\n\n".join(p for p in (summary, body) if p)}
    if summary and body:
        texts["summary"] = summary
    return texts


# Bumped when what the stored counts mean changes: older counts are then recounted.
COUNTS_VERSION = 3  # 3: invisible characters are counted as their <U+XXXX> escapes


def counts_stamp() -> str:
    """Stored with the counts: the tokenizer and the version of what was counted. Counts with
    another stamp are not used, and the embedding sweep recounts them."""
    return f"{tokens.fingerprint()}:v{COUNTS_VERSION}"


def _texts_hash(key: str, title: str, summary: str, body: str) -> str:
    text = f"{COUNTS_VERSION}\x00{key}\x00{title}\x00{summary or ''}\x00{body or ''}"
    return hashlib.sha256(text.encode()).hexdigest()


def text_token_counts(records) -> list[dict]:
    """Token counts of each record's title line and packing texts as they appear in a bundle
    (each after a newline), stored with its vector so requests need not count them."""
    rows, texts = [], []
    for record in records:
        forms = packing_texts(record.summary, record.body)
        rows.append((record, ["title", *forms]))
        texts.append(title_line(record.key, record.title))
        texts.extend(escape_markdown(t) for t in forms.values())
    counts = iter(tokens.count_many_after_newline(texts))
    stamp = counts_stamp()
    return [
        {
            "hash": _texts_hash(record.key, record.title, record.summary, record.body),
            "method": stamp,
            **{f: next(counts) for f in forms},
        }
        for record, forms in rows
    ]


def _stored_counts(row: dict) -> dict | None:
    """The stored counts of a record, if they were made from its current text by this tokenizer
    and are plausible (no text has fewer tokens than its length over the longest token)."""
    stored = row.get("stored_token_counts")
    if (
        not stored
        or stored.get("method") != counts_stamp()
        or stored.get("hash") != _texts_hash(row["key"], row["title"], row["summary"], row["body"])
    ):
        return None
    longest = tokens.longest_token_chars()
    texts = {"title": title_line(row["key"], row["title"])}
    texts.update(packing_texts(row["summary"], row["body"]))
    for form, text in texts.items():
        if not isinstance(stored.get(form), int) or stored[form] * longest < len(text):
            return None
    return stored


def _forms(row: dict) -> list[tuple[str, str]]:
    """Candidate texts from richest to leanest: whole record, summary (title only is implied)."""
    return [
        (form, text) for form, text in packing_texts(row["summary"], row["body"]).items() if text
    ]


# No block is shorter: its head line has 9 words and its title line 3 (single spaces between
# words are token boundaries: no token holds a "▁" after its first character, except runs of
# "▁"), the closing marker is a token and there are 4 newlines.
MIN_BLOCK_TOKENS = 17

# More characters per token than this is implausible for prose, so a text longer than
# room * MAX_CHARS_PER_TOKEN cannot fit and is not even counted.
MAX_CHARS_PER_TOKEN = 6


# Where an excerpt may end: after a sentence, or at the end of a line.
_CUT = re.compile(r"(?<=[.!?])[ \t]+|[ \t]*\n")
_FENCE = re.compile(r"^ {0,3}(```|~~~)", flags=re.MULTILINE)


def _excerpt_text(body: str, cut: int) -> str:
    """The body up to `cut`, as written (its newlines kept, so headings, list items and table rows
    stay on their own lines), marked as cut, with a code fence it leaves open closed."""
    text = body[:cut].rstrip() + " […]"
    if len(_FENCE.findall(text)) % 2:
        text += "\n```"
    return text


def _pack_excerpt(row: dict, room: int) -> tuple[str, str, int] | None:
    """The longest leading part of the body, ending after a sentence or a line, whose text fits
    into `room` tokens (the text alone: the block around it is counted by the caller)."""
    body = row["body"].strip()
    cuts = sorted({m.start() for m in _CUT.finditer(body) if body[: m.start()].strip()})
    if not cuts:
        return None
    best = None
    lo, hi = 0, len(cuts) - 1
    while lo <= hi:  # binary search on where to cut
        mid = (lo + hi) // 2
        text = _excerpt_text(body, cuts[mid])
        if len(text) > room * MAX_CHARS_PER_TOKEN:
            hi = mid - 1
            continue
        cost = tokens.count_after_newline(escape_markdown(text))
        if cost <= room:
            best = ("excerpt", text, cost)
            lo = mid + 1
        else:
            hi = mid - 1
    return best


def _choose_form(row: dict, item: dict, head: str, room: int) -> tuple[str, str, int] | None:
    """The richest form of the record that fits into `room` tokens, with its exact cost, or
    None. A block's cost is the sum of its lines' counts (after a newline) plus its newlines
    (see apps.retrieval.tokens); texts that obviously cannot fit are not counted at all."""
    if room < MIN_BLOCK_TOKENS:
        return None
    labels = label_lines(item)
    if len(head) > room * MAX_CHARS_PER_TOKEN:
        return None  # once the budget is nearly spent, the remaining candidates go uncounted
    stored = _stored_counts(row)
    if stored is not None:
        title_cost = stored["title"]
    else:
        title_cost = tokens.count_after_newline(title_line(item["key"], item["title"]))
    # head, title, labels and the closing marker, each on its own line, then a blank line.
    fixed = (
        tokens.count_after_newline(head)
        + title_cost
        + sum(tokens.count_after_newline(line) for line in labels)
        + tokens.count_after_newline(CLOSE)
        + (2 + len(labels))  # newlines between the lines
        + 2  # the blank line after the block
    )
    if fixed > room:
        return None
    chosen: tuple[str, str, int] = ("title", "", fixed)
    for form, text in _forms(row):
        if stored is not None and form in stored:
            cost = fixed + 1 + stored[form]  # counted when the record was embedded
        else:
            if len(text) > (room - fixed) * MAX_CHARS_PER_TOKEN:
                continue
            cost = fixed + 1 + tokens.count_after_newline(escape_markdown(text))
        if cost <= room:
            chosen = (form, text, cost)
            break
    if chosen[0] != "full" and row["body"].strip() and room - fixed > 40:
        excerpt = _pack_excerpt(row, room - fixed - 1)
        if excerpt is not None and len(excerpt[1]) > len(chosen[1]):
            chosen = (excerpt[0], excerpt[1], fixed + 1 + excerpt[2])
    return chosen


@dataclass
class Packed:
    """The records that fit, as items and as markdown blocks, what did not, and the tokens used
    (the header's included)."""

    used: int
    items: list[dict] = field(default_factory=list)
    blocks: list[str] = field(default_factory=list)
    omitted: list[dict] = field(default_factory=list)


def pack(
    ordered: list[tuple[dict, search.Hit, str]], *, used: int, max_tokens: int, now: dt.datetime
) -> Packed:
    """The records (row, hit, note) in order, each in the richest form that fits into what is
    left of `max_tokens` once `used` tokens are spent; the others are left out."""
    packed = Packed(used=used)
    for row, hit, note in ordered:
        # The reasons are worded only for a record that is kept, or whose label line shows them.
        item = items.record_item(
            row,
            now,
            score=hit.score,
            why=items.why_matched(hit),
            note=note,
            reasons=row["freshness"] in LABELLED_FRESHNESS,
        )
        head = head_line(item)
        chosen = _choose_form(row, item, head, max_tokens - packed.used)
        if chosen is None:
            packed.omitted.append(items.omission(row, "token budget", hit.score))
            continue
        if item["freshness_reasons"] is None:
            item["freshness_reasons"] = items.row_reasons(row, now)
        form, text, cost = chosen
        # JSON readers get the text as the markdown shows it: bidirectional controls and
        # invisible characters written as <U+XXXX> (markdown escapes `text` in render_block).
        item.update({"content": form, "text": reveal_invisible(text), "tokens": cost})
        packed.items.append(item)
        packed.blocks.append(render_block(item, text, head))
        packed.used += cost
    return packed


def fit(header: str, packed: Packed, omitted: list[dict], max_tokens: int) -> tuple[str, int]:
    """The bundle's markdown and its exact token count. With a tokenizer whose tokens can span
    lines, block counts are only estimates: the whole document is counted, and the last records
    are dropped (and added to `omitted`) until it fits."""
    markdown = header + "".join(packed.blocks)
    if tokens.is_additive():
        return markdown, packed.used
    while packed.items and tokens.count(markdown) > max_tokens:
        dropped = packed.items.pop()
        packed.blocks.pop()
        omitted.append(
            {
                "key": dropped["key"],
                "space": dropped["space"],
                "title": dropped["title"],
                "score": dropped["score"],
                "reason": "token budget",
            }
        )
        markdown = header + "".join(packed.blocks)
    return markdown, tokens.count(markdown)
