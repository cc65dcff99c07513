"""What a sync run leaves on its link (`last_*`, shown on the sync page and in the API), and
what the folder is known to hold (`synced_versions`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from django.db.models import Max
from django.utils import timezone

from apps.core.errors import Conflict
from apps.interchange.models import RepoLink
from apps.interchange.sync.git import one_at_a_time
from apps.records.models import Record, Revision


@dataclass
class SyncOutcome:
    result: str
    message: str
    waiting: list[dict]
    summary: dict


def run_alone(link: RepoLink, step: Callable[[RepoLink], SyncOutcome]) -> SyncOutcome:
    """Run one direction of a sync on a fresh copy of `link`, under its lock; a run that finds
    another one going fails and changes nothing."""
    link = RepoLink.objects.select_related("space", "created_by").get(pk=link.pk)
    try:
        with one_at_a_time(link):
            return step(link)
    except Conflict as exc:
        return SyncOutcome(RepoLink.Result.FAILED, exc.message, list(link.waiting), {})


def finish(
    link: RepoLink,
    direction: str,
    result: str,
    message: str,
    summary: dict[str, Any] | None = None,
) -> SyncOutcome:
    link.last_sync_at = timezone.now()
    link.last_direction = direction
    link.last_result = result
    link.last_message = message[:4000]
    if summary is not None:
        link.last_summary = summary
    RepoLink.objects.filter(pk=link.pk).update(
        last_sync_at=link.last_sync_at,
        last_direction=direction,
        last_result=result,
        last_message=link.last_message,
        last_summary=link.last_summary,
        waiting=link.waiting,
        synced_versions=link.synced_versions,
        last_pulled_commit=link.last_pulled_commit,
    )
    return SyncOutcome(result, link.last_message, list(link.waiting), link.last_summary)


def result_of(link: RepoLink) -> str:
    """OK, or WAITING while files wait for a person."""
    return RepoLink.Result.WAITING if link.waiting else RepoLink.Result.OK


def combined(outcomes: list[SyncOutcome]) -> SyncOutcome:
    """A pull and a push as one outcome: the worse result, both messages."""
    order: list[str] = [RepoLink.Result.OK, RepoLink.Result.WAITING, RepoLink.Result.FAILED]
    worst = max((o.result for o in outcomes), key=order.index)
    return SyncOutcome(
        worst,
        " ".join(o.message for o in outcomes),
        outcomes[-1].waiting,
        outcomes[0].summary,
    )


def latest_revisions(records: Iterable[Record]) -> dict[int, int]:
    """{record id: its latest revision number}. Revisions count every change, links included
    (a link adds a revision without bumping the record's version)."""
    return dict(
        Revision.objects.filter(record__in=records)
        .values("record_id")
        .annotate(latest=Max("number"))
        .values_list("record_id", "latest")
    )
