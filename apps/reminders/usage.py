"""How often records were returned to AI tools, and the questions they could not answer: the
reminders' view of the retrieval usage log (`apps.retrieval` logs every context fetch; a record
never fetched has usage 0)."""

from __future__ import annotations

import datetime as dt
import logging

from django.db.models import Count
from django.utils import timezone

from apps.retrieval.models import ContextResult, Gap
from apps.retrieval.selectors import record_usage

log = logging.getLogger(__name__)
USAGE_WINDOW_DAYS = 30


def usage_counts(record_ids, *, since: dt.datetime | None = None) -> dict[int, int]:
    """{record_id: times returned by context fetches in the last 30 days}; missing means 0."""
    ids = list(record_ids)
    if not ids:
        return {}
    try:
        return {
            int(pk): int(u.fetches) for pk, u in record_usage(record_ids=ids, since=since).items()
        }
    except Exception:  # a broken hook must not stop digests
        log.exception("record_usage failed; treating usage as 0")
        return {}


def open_gaps(*, space_ids, limit: int = 10) -> list[Gap]:
    """Open gaps (questions AI tools could not get answered) in these spaces, most asked first."""
    return list(
        Gap.objects.filter(space_id__in=list(space_ids), status=Gap.Status.OPEN)
        .select_related("space")
        .order_by("-count", "-last_seen")[:limit]
    )


def most_used(records, *, limit: int, since: dt.datetime | None = None) -> dict[int, int]:
    """{record_id: fetches} of the `limit` records of the `records` queryset that context
    fetches returned most often in the last 30 days, most used first (one query)."""
    since = since or timezone.now() - dt.timedelta(days=USAGE_WINDOW_DAYS)
    rows = (
        ContextResult.objects.filter(record__in=records.values("pk"), created_at__gte=since)
        .values("record_id")
        .annotate(n=Count("id"))
        .order_by("-n", "record_id")[:limit]
    )
    return {row["record_id"]: row["n"] for row in rows}
