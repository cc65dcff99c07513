"""Reads for the usage log and gaps (used by the web pages and the dashboard)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count
from django.utils import timezone

from apps.accounts.models import Space
from apps.retrieval.models import ContextResult, Gap


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
