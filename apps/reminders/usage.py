"""How often records were returned to AI tools: the hook into the retrieval usage log.

The retrieval app (when installed) provides `apps.retrieval.selectors.usage_counts(record_ids,
since=…)` returning {record_id: count}. Until it exists, or for records never fetched, usage is 0.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.apps import apps as django_apps

log = logging.getLogger(__name__)
USAGE_WINDOW_DAYS = 30


def usage_counts(record_ids, *, since: dt.datetime | None = None) -> dict[int, int]:
    """{record_id: times returned by context fetches in the last 30 days}; missing means 0."""
    ids = list(record_ids)
    if not ids or not django_apps.is_installed("apps.retrieval"):
        return {}
    try:
        from apps.retrieval import selectors
    except ImportError:
        return {}
    fn = getattr(selectors, "usage_counts", None)
    if fn is None:
        return {}
    try:
        return {int(k): int(v) for k, v in fn(ids, since=since).items()}
    except Exception:  # a broken hook must not stop digests
        log.exception("usage_counts hook failed; treating usage as 0")
        return {}


def open_gaps(*, space_ids=None, limit: int = 10) -> list | None:
    """Open gaps (queries that found nothing) from the retrieval app, or None when unavailable."""
    if not django_apps.is_installed("apps.retrieval"):
        return None
    try:
        from apps.retrieval import selectors
    except ImportError:
        return None
    fn = getattr(selectors, "open_gaps", None) or getattr(selectors, "gap_list_open", None)
    if fn is None:
        return None
    try:
        return list(fn(space_ids=space_ids, limit=limit))
    except Exception:
        log.exception("open_gaps hook failed")
        return None
