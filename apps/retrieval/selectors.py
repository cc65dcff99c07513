"""Reads of the retrieval app: record search for people (the web UI), the usage log and gaps."""

from __future__ import annotations

import datetime as dt
import html
import re
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from apps.accounts.models import Space
from apps.retrieval import search
from apps.retrieval.models import ContextResult, Gap

# --- record search for people ----------------------------------------------------------------

# Ranked records a web search lists (two pages of the record table).
SEARCH_LIMIT = 100


def record_search(
    *, space_ids: list[int], query: str, kinds: list[str] | None = None
) -> list[search.Hit]:
    """The records a person's search finds, best first: the context API's own ranking
    (`search.hybrid_search`: any of the words, records with all of them first). A record found
    only by meaning is listed when it is as similar as a context request needs to not count as
    a gap; weaker nearest neighbours are not results a person can make sense of."""
    result = search.hybrid_search(
        space_ids=space_ids, query=query, kinds=kinds or None, limit=SEARCH_LIMIT
    )
    floor = settings.CONTEXTKB_GAP_THRESHOLD
    return [
        hit for hit in result.hits if hit.fts_rank is not None or (hit.similarity or 0.0) >= floor
    ]


# ts_headline marks matches with these (private-use characters, removed from the text first), so
# the text can be HTML-escaped before the marks become <mark> elements.
_START, _STOP = "\ue000", "\ue001"
_HEADLINE_ALL = f'StartSel="{_START}", StopSel="{_STOP}", HighlightAll=true'
_HEADLINE_FRAGMENT = (
    f'StartSel="{_START}", StopSel="{_STOP}", MaxFragments=1, MaxWords=28, MinWords=12'
)
# q: any of the query's words, as the search engine reads them (english stems).
_HIGHLIGHT_SQL = """
    WITH q AS (
        SELECT replace(websearch_to_tsquery('english', %(q)s)::text, ' & ', ' | ')::tsquery AS q
    )
    SELECT r.id,
           ts_headline('english', translate(r.title, %(marks)s, ''), q.q, %(all)s),
           ts_headline('english', translate(r.summary, %(marks)s, ''), q.q, %(all)s),
           CASE WHEN to_tsvector('english', r.title || ' ' || r.summary) @@ q.q THEN ''
                ELSE ts_headline(
                    'english', translate(left(r.body, %(body_chars)s), %(marks)s, ''), q.q,
                    %(fragment)s
                )
           END,
           left(r.body, 400)
    FROM records_record r, q
    WHERE r.id = ANY(%(ids)s::bigint[])
"""


# A body's excerpt comes from its first this many characters (marking is ~linear in the text).
EXCERPT_FROM_CHARS = 8000


@dataclass
class Highlight:
    title: SafeString
    excerpt: SafeString  # the summary, or the part of the body that matched


def _marked(text: str, limit: int | None = None) -> SafeString:
    """Escaped text with the matches in <mark>, cut to about `limit` visible characters."""
    if limit is not None and len(text) - text.count(_START) - text.count(_STOP) > limit:
        visible, cut = 0, len(text)
        for i, char in enumerate(text):
            if char not in (_START, _STOP):
                visible += 1
                if visible > limit:
                    cut = i
                    break
        text = text[:cut].rstrip()
        if text.count(_START) > text.count(_STOP):
            text += _STOP
        text += "…"
    escaped = html.escape(text, quote=False)
    return mark_safe(escaped.replace(_START, "<mark>").replace(_STOP, "</mark>"))  # noqa: S308


_SPACES = re.compile(r"\s+")
# Markdown syntax that means nothing in a one-line excerpt: heading marks, emphasis, code ticks,
# table pipes.
_MARKUP = re.compile(r"(?:(?<=\s)|^)#{1,6}(?=\s)|\*\*|__|`|\|")


def _plain(text: str) -> str:
    return _SPACES.sub(" ", _MARKUP.sub(" ", text)).strip()


def highlights(*, record_ids: list[int], query: str) -> dict[int, Highlight]:
    """{record id: title and excerpt with the query's words marked}, in one query. The words are
    matched as the search matches them (english stems: "retries" marks "retry")."""
    if not record_ids or not query.strip():
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            _HIGHLIGHT_SQL,
            {
                "q": query,
                "ids": list(record_ids),
                "marks": _START + _STOP,
                "all": _HEADLINE_ALL,
                "fragment": _HEADLINE_FRAGMENT,
                "body_chars": EXCERPT_FROM_CHARS,
            },
        )
        rows = cursor.fetchall()
    found = {}
    for pk, title, summary, fragment, start in rows:
        # The body is excerpted only when neither the title nor the summary shows a match (most
        # of the time of marking goes to bodies).
        if _START in summary or _START not in fragment:
            excerpt = _marked(summary, 160)
        else:
            text = _plain(fragment)
            unmarked = text.replace(_START, "").replace(_STOP, "")
            opening = "" if _plain(start).startswith(unmarked[:40]) else "… "
            excerpt = _marked(f"{opening}{text} …")
        found[pk] = Highlight(title=_marked(title), excerpt=excerpt)
    return found


# --- usage and gaps ---------------------------------------------------------------------------


@dataclass
class RecordUsage:
    fetches: int
    tools: int
    since: dt.datetime

    def __str__(self) -> str:
        times = "time" if self.fetches == 1 else "times"
        tools = "tool" if self.tools == 1 else "tools"
        return f"fetched {self.fetches} {times} in the last 30 days by {self.tools} {tools}"


def record_usage(
    *, record_ids: list[int], since: dt.datetime | None = None
) -> dict[int, RecordUsage]:
    """{record id: usage} over the last 30 days (or since `since`), in one query."""
    since = since or timezone.now() - dt.timedelta(days=30)
    rows = (
        ContextResult.objects.filter(record_id__in=record_ids, created_at__gte=since)
        .values("record_id")
        .annotate(fetches=Count("id"), tools=Count("tool", distinct=True))
    )
    usage = {rid: RecordUsage(0, 0, since) for rid in record_ids}
    for row in rows:
        usage[row["record_id"]] = RecordUsage(row["fetches"], row["tools"], since)
    return usage


def gap_list(*, principal, space: Space, include_dismissed: bool = False):
    """Gaps of a space the principal may see (none otherwise), most asked first."""
    if not Space.objects.visible_to(principal).filter(pk=space.pk).exists():
        return Gap.objects.none()
    qs = Gap.objects.filter(space=space)
    if not include_dismissed:
        qs = qs.filter(status=Gap.Status.OPEN)
    return qs.order_by("-count", "-last_seen")
