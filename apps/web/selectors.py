"""Reads behind the web pages: the filtered record table, search, tags and counts (the link
graph is apps.web.graph)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery, SearchQueryField, SearchRank
from django.db import connection
from django.db.models import (
    BooleanField,
    Case,
    F,
    FloatField,
    Func,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone

from apps.accounts import access
from apps.accounts.models import Membership, Space
from apps.records import selectors as record_selectors
from apps.records.models import CreateSubmission, Record, RecordQuerySet
from apps.records.policy import freshness_sql
from apps.records.space_tags import SpaceTag
from apps.retrieval import selectors as retrieval_selectors

SORTS = {
    "key": ("kind", "number"),
    "-key": ("-kind", "-number"),
    "title": ("title",),
    "-title": ("-title",),
    "status": ("status", "kind", "number"),
    "-status": ("-status", "kind", "number"),
    "owner": ("owner_user__username", "kind", "number"),
    "-owner": ("-owner_user__username", "kind", "number"),
    # Worst first: suspect, stale, due, not yet verified, fresh (the first click on the column shows the problems).
    "freshness": (F("freshness_rank").desc(), "kind", "number"),
    "-freshness": (F("freshness_rank").asc(), "kind", "number"),
    "verified": (F("last_verified_at").asc(nulls_first=True), "kind", "number"),
    "-verified": (F("last_verified_at").desc(nulls_last=True), "kind", "number"),
    "updated": ("updated_at",),
    "-updated": ("-updated_at",),
}
DEFAULT_SORT = "-updated"
# What the sort menu offers (the column headers toggle the rest).
SORT_CHOICES = [
    ("-updated", "Recently updated"),
    ("updated", "Least recently updated"),
    ("key", "Key"),
    ("title", "Title"),
    ("status", "Status"),
    ("owner", "Owner"),
    ("freshness", "Freshness (worst first)"),
    ("verified", "Verified longest ago"),
    ("-verified", "Verified most recently"),
]
FRESHNESS_RANK = Case(
    *(
        When(live_freshness=state, then=Value(rank))
        for rank, state in enumerate(
            [
                Record.Freshness.FRESH,
                Record.Freshness.UNVERIFIED,
                Record.Freshness.DUE,
                Record.Freshness.STALE,
                Record.Freshness.SUSPECT,
            ]
        )
    ),
    default=Value(0),
)
# A freshness filter value meaning "stale or suspect": the records someone should look at.
ATTENTION = "attention"


@dataclass
class RecordFilters:
    """What the space home's query string asks for; unknown values are ignored, not errors."""

    q: str = ""
    kind: str = ""
    status: str = ""
    owner: str = ""
    tag: str = ""
    freshness: str = ""
    anchor: str = ""
    archived: bool = False
    sort: str = ""

    @classmethod
    def from_query(cls, params) -> RecordFilters:
        def pick(name, allowed=None):
            # PostgreSQL text cannot hold NUL; a stray one must not become a server error.
            value = (params.get(name) or "").replace("\x00", "").strip()[:200]
            return value if allowed is None or value in allowed else ""

        return cls(
            q=pick("q"),
            kind=pick("kind", Record.Kind.values),
            status=pick("status", Record.Status.values),
            owner=pick("owner"),
            tag=pick("tag").lower(),
            freshness=pick("freshness", [*Record.Freshness.values, ATTENTION]),
            anchor=pick("anchor"),
            archived=params.get("archived") == "1",
            sort=pick("sort", SORTS),
        )

    @property
    def active(self) -> bool:
        return any(
            [self.q, self.kind, self.status, self.owner, self.tag, self.freshness, self.anchor]
        )


def space_records(
    *, principal, space: Space, filters: RecordFilters, user
) -> QuerySet[Record] | list[Record]:
    """The records of one space the principal may see, filtered and sorted as asked; with a
    search, only those it finds (a list, best match first, when no sort is asked for)."""
    qs = record_selectors.record_list_visible(
        principal=principal, include_archived=filters.archived
    ).filter(space=space)
    if filters.archived:
        qs = qs.filter(archived_at__isnull=False)
    if filters.kind:
        qs = qs.filter(kind=filters.kind)
    if filters.status:
        qs = qs.filter(status=filters.status)
    if filters.freshness == ATTENTION:
        qs = qs.filter(live_freshness__in=[Record.Freshness.STALE, Record.Freshness.SUSPECT])
    elif filters.freshness:
        qs = qs.filter(live_freshness=filters.freshness)
    if filters.tag:
        qs = qs.filter(tags__contains=[filters.tag])
    if filters.owner:
        qs = _owned_by(qs, filters.owner, user=user)
    if filters.anchor:
        qs = qs.anchored_to(filters.anchor)
    if filters.q:
        return _searched(qs, space=space, filters=filters)
    return _sorted(qs, filters.sort or DEFAULT_SORT)


def _owned_by(qs: RecordQuerySet, owner: str, *, user) -> RecordQuerySet:
    """The owner filter: "me", "none", "u:<user id>" or "t:<team id>" (anything else: no filter)."""
    if owner == "me":
        return qs.filter(owner_user=user)
    if owner == "none":
        return qs.filter(owner_user__isnull=True, owner_team__isnull=True)
    if owner.startswith("u:") and owner[2:].isdigit():
        return qs.filter(owner_user_id=int(owner[2:]))
    if owner.startswith("t:") and owner[2:].isdigit():
        return qs.filter(owner_team_id=int(owner[2:]))
    return qs


def _sorted(qs: QuerySet[Record], sort: str) -> QuerySet[Record]:
    if sort.lstrip("-") == "freshness":
        qs = qs.annotate(freshness_rank=FRESHNESS_RANK)
    return qs.order_by(*SORTS[sort])


class AnyWordQuery(Func):
    """Any of the query's words, as the search engine reads them (websearch syntax, english
    stems)."""

    template = (
        "replace(websearch_to_tsquery('english', %(expressions)s)::text, ' & ', ' | ')::tsquery"
    )
    output_field = SearchQueryField()


class AllWordsQuery(Func):
    template = "websearch_to_tsquery('english', %(expressions)s)"
    output_field = SearchQueryField()


# As in the retrieval engine: a query with quotes or -exclusions means every word.
_STRICT = re.compile(r'(^|\s)-\S|"')
_KEY = re.compile(r"[A-Za-z]{2,10}-\d+")


def _searched(qs: QuerySet[Record], *, space: Space, filters: RecordFilters):
    """The filtered records that the search finds. Active records are ranked by the retrieval
    engine the context API uses (any of the words, records with all of them first); the archive,
    which that engine does not search, by full-text rank over any of the words. With no sort
    asked for, best match first."""
    if filters.archived:
        strict = _STRICT.search(filters.q)
        query = (AllWordsQuery if strict else AnyWordQuery)(Value(filters.q))
        qs = qs.alias(
            found=Func(
                F("search_vector"),
                query,
                template="%(expressions)s",
                arg_joiner=" @@ ",
                output_field=BooleanField(),
            ),
            rank=Func(F("search_vector"), query, function="ts_rank", output_field=FloatField()),
        ).filter(found=True)
        return _sorted(qs, filters.sort) if filters.sort else qs.order_by("-rank", "kind", "number")
    # A record's key (DEC-12) is a way to go to that record, not words to rank: its "12" would
    # match every record numbered 12 in another kind.
    if _KEY.fullmatch(filters.q.strip()):
        by_key = qs.filter(key__iexact=filters.q.strip())
        if by_key.exists():
            return by_key
    hits = retrieval_selectors.record_search(
        space_ids=[space.pk], query=filters.q, kinds=[filters.kind] if filters.kind else None
    )
    qs = qs.filter(pk__in=[hit.record_id for hit in hits])
    if filters.sort:
        return _sorted(qs, filters.sort)
    order = {hit.record_id: i for i, hit in enumerate(hits)}
    return sorted(qs, key=lambda record: order[record.pk])


def search_everywhere(*, principal, q: str, kind: str = "") -> list[Record]:
    """The records a search finds in every space the principal may see, best match first:
    the same engine and rules as a space's search."""
    q = (q or "").replace("\x00", "").strip()[:200]
    if not q:
        return []
    space_ids = list(Space.objects.visible_to(principal).values_list("pk", flat=True))
    hits = retrieval_selectors.record_search(
        space_ids=space_ids, query=q, kinds=[kind] if kind else None
    )
    found = {
        record.pk: record
        for record in record_selectors.record_list_visible(principal=principal).filter(
            pk__in=[hit.record_id for hit in hits]
        )
    }
    return [found[hit.record_id] for hit in hits if hit.record_id in found]


def form_fingerprint(kind: str, fields: dict) -> str:
    """A hash of what a create form held, to tell a resent form from a changed one."""
    text = json.dumps({"kind": kind, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def submitted_twice(*, space: Space, actor, token: str) -> CreateSubmission | None:
    """What the create form carrying `token` created before, if anything (a double-click, a
    browser resending the POST, or Back and Create again). The caller compares fingerprints:
    only the same content is a double-submit. Call it inside the transaction that creates the
    record: it locks the user's membership row, so a second request waits until the first has
    committed and then finds its record instead of creating a copy."""
    user = access.user_of(actor)
    if user is None or not token:
        return None
    list(Membership.objects.select_for_update().filter(space=space, user=user).values("pk"))
    return (
        CreateSubmission.objects.select_related("record__space")
        .filter(user=user, token=token, record__space=space)
        .first()
    )


def space_tags(space: Space) -> list[str]:
    """Every tag used by an active record of the space, for the tag filter: from the tag counts
    the records table's triggers keep in the same transaction as each write (one row per tag,
    not a scan of the space's records)."""
    rows = SpaceTag.objects.filter(space=space, records__gt=0).values_list("tag", flat=True)
    return sorted(rows)


def space_counts(space: Space) -> dict[str, int]:
    """How many active records per freshness state, for the summary strip, as derived now.

    Only records that can be in another state than fresh or not yet verified are read (review
    date passed or within the due window: an index-only range of the space; superseded, a passed
    valid-until date or an open suspect reason: a few index lookups); the rest are the space's
    maintained totals (apps.records.space_tags.SpaceTally) minus those, split by whether they
    were ever verified. So the strip costs the records needing attention, not the space's
    size, and agrees with the list's freshness filter. One statement."""
    now = timezone.now()
    state, fresh_params = freshness_sql("r", now=now, named=True)
    assert isinstance(fresh_params, dict)  # named=True
    # A day beyond the due window: the derived state adds the window as calendar days in the
    # database's time zone; extra candidates are only classified, never miscounted.
    params = {
        **fresh_params,
        "space": space.pk,
        "horizon": now + dt.timedelta(days=space.due_window_days + 1),
        "today": timezone.localdate(now),
    }
    # Our own SQL fragments; values are parameters.
    select = f"SELECT {state} AS state, r.last_verified_at IS NULL AS never_verified"
    arm = (
        select + ", count(*) FROM records_record r "  # noqa: S608
        "WHERE r.space_id = %(space)s AND r.archived_at IS NULL AND "
    )
    not_soon = "NOT coalesce(r.next_review_at <= %(horizon)s, false)"
    sql = f"""
        {arm} r.next_review_at <= %(horizon)s GROUP BY 1, 2
        UNION ALL
        {arm} {not_soon} AND (r.status = 'superseded' OR r.valid_until < %(today)s)
        GROUP BY 1, 2
        UNION ALL
        {arm} {not_soon} AND r.status <> 'superseded'
            AND NOT coalesce(r.valid_until < %(today)s, false)
            AND r.id IN (SELECT record_id FROM records_suspectreason WHERE resolved_at IS NULL)
        GROUP BY 1, 2
        UNION ALL
        SELECT 'tally', true, unverified FROM records_spacetally WHERE space_id = %(space)s
        UNION ALL
        SELECT 'tally', false, active - unverified FROM records_spacetally
        WHERE space_id = %(space)s
    """  # noqa: S608 - built from our own fragments; values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    counts = dict.fromkeys(Record.Freshness.values, 0)
    # Records outside the candidates: fresh if ever verified, else not yet verified.
    rest = {True: 0, False: 0}
    for name, never_verified, n in rows:
        if name == "tally":
            rest[never_verified] += n
        else:
            counts[name] += n
            rest[never_verified] -= n
    counts[Record.Freshness.UNVERIFIED] += rest[True]
    counts[Record.Freshness.FRESH] += rest[False]
    counts["total"] = sum(counts.values())
    return counts


def link_candidates(*, principal, record: Record, text: str, limit: int = 8) -> list[Record]:
    """Records the picker offers for `text`: key prefix matches first, then full-text hits."""
    text = (text or "").replace("\x00", "").strip()[:200]
    if not text:
        return []
    base = (
        record_selectors.record_list_visible(principal=principal)
        .filter(space=record.space)
        .exclude(pk=record.pk)
    )
    by_key = list(base.filter(key__istartswith=text).order_by("kind", "number")[:limit])
    query = SearchQuery(text, search_type="websearch", config="english") | SearchQuery(
        text, search_type="websearch", config="simple"
    )
    rest = (
        base.filter(Q(search_vector=query) | Q(title__icontains=text))
        .exclude(pk__in=[r.pk for r in by_key])
        .annotate(rank=SearchRank(F("search_vector"), query))
        .order_by("-rank", "kind", "number")[: max(0, limit - len(by_key))]
    )
    return by_key + list(rest)


def link_target(*, principal, record: Record, text: str) -> tuple[Record | None, bool]:
    """The record the link form names: the one with key `text`, else the only one the picker
    finds for it. (None, True) when the picker finds several."""
    by_key = record_selectors.record_get_by_key(
        principal=principal, space_slug=record.space.slug, key=text
    )
    if by_key is not None:
        return by_key, False
    candidates = link_candidates(principal=principal, record=record, text=text, limit=2)
    if len(candidates) == 1:
        return candidates[0], False
    return None, bool(candidates)


def revision_number(record: Record, *, version: int | None = None) -> int | None:
    """The newest revision number of `record` (at `version`, if given)."""
    revisions = record.revisions.order_by("-number")
    if version is not None:
        revisions = revisions.filter(version=version)
    return revisions.values_list("number", flat=True).first()
