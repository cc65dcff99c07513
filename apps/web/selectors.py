"""Reads behind the web pages: the filtered record table and a record's neighbourhood graph."""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field

from django.contrib.postgres.search import SearchQuery, SearchQueryField, SearchRank
from django.db.models import (
    BooleanField,
    Case,
    Count,
    F,
    FloatField,
    Func,
    Q,
    QuerySet,
    Value,
    When,
)

from apps.accounts import access
from apps.accounts.models import Membership, Space
from apps.records import selectors as record_selectors
from apps.records.models import CreateSubmission, Link, Record
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
    if filters.owner == "me":
        qs = qs.filter(owner_user=user)
    elif filters.owner == "none":
        qs = qs.filter(owner_user__isnull=True, owner_team__isnull=True)
    elif filters.owner.startswith("u:") and filters.owner[2:].isdigit():
        qs = qs.filter(owner_user_id=int(filters.owner[2:]))
    elif filters.owner.startswith("t:") and filters.owner[2:].isdigit():
        qs = qs.filter(owner_team_id=int(filters.owner[2:]))
    if filters.anchor:
        qs = qs.anchored_to(filters.anchor)
    if filters.q:
        return _searched(qs, space=space, filters=filters)
    return _sorted(qs, filters.sort or DEFAULT_SORT)


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
    """Every tag used by an active record of the space, for the tag filter."""
    rows = (
        Record.objects.active()
        .filter(space=space)
        .values_list("tags", flat=True)
        .order_by()
        .distinct()
    )
    return sorted({tag for tags in rows for tag in tags})


def space_counts(space: Space) -> dict[str, int]:
    """How many active records per freshness state, for the summary strip."""
    counts = dict.fromkeys(Record.Freshness.values, 0)
    rows = (
        Record.objects.active()
        .filter(space=space)
        .with_freshness()
        .values_list("live_freshness")
        .order_by()
        .annotate(n=Count("*"))
    )
    for state, n in rows:
        counts[state] = n
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


# --- neighbourhood graph ---------------------------------------------------------------------


@dataclass
class Node:
    record: Record
    hop: int
    x: float = 0.0
    y: float = 0.0
    angle: float = 0.0

    @property
    def box_x(self) -> float:
        return self.x - NODE_W / 2

    @property
    def box_y(self) -> float:
        return self.y - NODE_H / 2


@dataclass
class Edge:
    source: Node
    target: Node
    type: str
    label: str
    path: str = ""
    label_x: float = 0.0
    label_y: float = 0.0


@dataclass
class Graph:
    nodes: list[Node] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    width: int = 900
    height: int = 640
    truncated: bool = False


MAX_NODES = 40
NODE_W, NODE_H = 150, 44


def neighbourhood(*, principal, record: Record, hops: int = 2) -> Graph:
    """The records within `hops` links of `record` (either direction), laid out radially.

    One query per hop plus one for the records: constant for a given number of hops.
    """
    visible = record_selectors.record_list_visible(principal=principal, include_archived=True)
    hop_of = {record.pk: 0}
    links: dict[int, Link] = {}
    frontier = {record.pk}
    truncated = False
    for hop in range(1, hops + 1):
        found = Link.objects.filter(Q(source_id__in=frontier) | Q(target_id__in=frontier)).filter(
            source__in=visible, target__in=visible
        )
        nxt = set()
        for link in found:
            for pk in (link.source_id, link.target_id):
                if pk not in hop_of:
                    if len(hop_of) >= MAX_NODES:
                        truncated = True
                        continue
                    hop_of[pk] = hop
                    nxt.add(pk)
            if link.source_id in hop_of and link.target_id in hop_of:
                links[link.pk] = link
        frontier = nxt
        if not frontier:
            break
    # Links between nodes found in the last hop were not fetched from their side; add them.
    extra = Link.objects.filter(source_id__in=hop_of, target_id__in=hop_of).exclude(pk__in=links)
    for link in extra:
        links[link.pk] = link
    records = {r.pk: r for r in visible.filter(pk__in=hop_of)}
    nodes = {pk: Node(record=records[pk], hop=h) for pk, h in hop_of.items() if pk in records}
    graph = Graph(truncated=truncated)
    _layout(nodes, links.values(), graph, centre=record.pk)
    graph.nodes = sorted(nodes.values(), key=lambda n: (n.hop, n.record.kind, n.record.number))
    lanes: dict[frozenset, int] = {}
    for link in sorted(links.values(), key=lambda lk: lk.pk):
        if link.source_id in nodes and link.target_id in nodes:
            edge = Edge(
                source=nodes[link.source_id],
                target=nodes[link.target_id],
                type=link.type,
                label=link.get_type_display(),
            )
            pair = frozenset((link.source_id, link.target_id))
            lane = lanes[pair] = lanes.get(pair, -1) + 1
            # Second and later links between the same two records bend to alternate sides.
            _route(edge, graph.nodes, lane=(lane + 1) // 2 * (1 if lane % 2 else -1))
            graph.edges.append(edge)
    return graph


def _layout(nodes: dict[int, Node], links, graph: Graph, *, centre: int) -> None:
    """Centre in the middle, first hop on an inner ring, second hop on an outer ring next to the
    first-hop node that led to it."""
    ring1 = [n for n in nodes.values() if n.hop == 1]
    ring2 = [n for n in nodes.values() if n.hop == 2]
    ring1.sort(key=lambda n: (n.record.kind, n.record.number))
    # Rings wide enough that the boxes on them do not overlap.
    r1 = max(180.0, len(ring1) * (NODE_H + 40) / (2 * math.pi))
    r2 = max(r1 + 150.0, len(ring2) * (NODE_H + 30) / (2 * math.pi))
    for i, node in enumerate(ring1):
        node.angle = 2 * math.pi * i / max(1, len(ring1)) - math.pi / 2
    parent_angle = {}
    for link in links:
        for a, b in ((link.source_id, link.target_id), (link.target_id, link.source_id)):
            if a in nodes and b in nodes and nodes[a].hop == 2 and nodes[b].hop == 1:
                parent_angle.setdefault(a, nodes[b].angle)
    # Second-hop nodes fan out around the angle of the first-hop node that led to them.
    children: dict[float, list[Node]] = {}
    for node in sorted(ring2, key=lambda n: (n.record.kind, n.record.number)):
        children.setdefault(parent_angle.get(node.record.pk, 0.0), []).append(node)
    step = min(0.45, 2 * math.pi / max(1, len(ring2)))
    for angle, group in children.items():
        for j, node in enumerate(group):
            node.angle = angle + (j - (len(group) - 1) / 2) * step
    # Boxes are wide and short, so the rings are ellipses: wider than tall.
    for node in nodes.values():
        radius = {0: 0.0, 1: r1, 2: r2}[node.hop]
        node.x = radius * 1.8 * math.cos(node.angle)
        node.y = radius * math.sin(node.angle)
    _separate(list(nodes.values()))
    # Fit the canvas to the boxes (plus a margin), not to the rings.
    margin = 24
    xs = [n.x for n in nodes.values()] or [0.0]
    ys = [n.y for n in nodes.values()] or [0.0]
    left, top = min(xs) - NODE_W / 2 - margin, min(ys) - NODE_H / 2 - margin
    graph.width = int(max(xs) - min(xs) + NODE_W + 2 * margin)
    graph.height = int(max(ys) - min(ys) + NODE_H + 2 * margin)
    for node in nodes.values():
        node.x -= left
        node.y -= top


GAP_X, GAP_Y = 24.0, 18.0


def _separate(nodes: list[Node], rounds: int = 200) -> None:
    """Push overlapping boxes apart (the centre stays put), along the axis where they overlap
    least, until no two boxes are closer than the gaps. A few dozen boxes: cheap."""
    for _ in range(rounds):
        moved = False
        for i, a in enumerate(nodes):
            for b in nodes[i + 1 :]:
                dx, dy = b.x - a.x, b.y - a.y
                over_x = NODE_W + GAP_X - abs(dx)
                over_y = NODE_H + GAP_Y - abs(dy)
                if over_x <= 0 or over_y <= 0:
                    continue
                moved = True
                # Move the outer one(s); the centre record never moves.
                share_a = 0.0 if a.hop == 0 else (1.0 if b.hop == 0 else 0.5)
                share_b = 1.0 - share_a
                if over_x / (NODE_W + GAP_X) < over_y / (NODE_H + GAP_Y):
                    push = over_x * (1 if dx >= 0 else -1)
                    a.x -= push * share_a
                    b.x += push * share_b
                else:
                    push = over_y * (1 if dy >= 0 else -1)
                    a.y -= push * share_a
                    b.y += push * share_b
        if not moved:
            return


def _route(edge: Edge, nodes: list[Node], *, lane: int = 0) -> None:
    """A quadratic curve from box border to box border that bends around the other boxes; the
    label sits at its middle. `lane` separates several links between the same two records."""
    x1, y1, x2, y2 = edge.source.x, edge.source.y, edge.target.x, edge.target.y
    dx, dy = x2 - x1, y2 - y1
    length = math.hypot(dx, dy) or 1.0
    # Unit normal, pointing away from the canvas centre, so bends go outwards.
    nx, ny = -dy / length, dx / length
    others = [n for n in nodes if n is not edge.source and n is not edge.target]
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    centre = next((n for n in nodes if n.hop == 0), None)
    if centre is not None and (mx - centre.x) * nx + (my - centre.y) * ny < 0:
        nx, ny = -nx, -ny
    offsets = [lane * 36.0] if lane else [0.0]
    offsets += [sign * step for step in (50.0, 90.0, 140.0, 200.0) for sign in (1, -1)]
    for offset in offsets:
        cx, cy = mx + nx * offset * 2, my + ny * offset * 2  # a control point bends half as far
        if not any(_curve_hits(n, (x1, y1), (cx, cy), (x2, y2)) for n in others):
            break
    else:
        cx, cy = mx + nx * offsets[0] * 2, my + ny * offsets[0] * 2
    p0, p1, p2 = (x1, y1), (cx, cy), (x2, y2)
    # Clip the curve to the parts outside both boxes, so the arrowhead touches the border.
    start = next(
        (t / 40 for t in range(41) if not _inside(edge.source, _bezier(p0, p1, p2, t / 40))), 0.0
    )
    end = next(
        (
            t / 40
            for t in range(40, -1, -1)
            if not _inside(edge.target, _bezier(p0, p1, p2, t / 40))
        ),
        1.0,
    )
    if end <= start:
        start, end = 0.0, 1.0
    a, b = _bezier(p0, p1, p2, start), _bezier(p0, p1, p2, end)
    # The control point of the sub-curve between `start` and `end` (the blossom of the curve).
    c = tuple(
        (1 - start) * (1 - end) * p0[i]
        + ((1 - start) * end + start * (1 - end)) * p1[i]
        + start * end * p2[i]
        for i in (0, 1)
    )
    edge.path = f"M{a[0]:.1f},{a[1]:.1f} Q{c[0]:.1f},{c[1]:.1f} {b[0]:.1f},{b[1]:.1f}"
    middle = _bezier(p0, p1, p2, (start + end) / 2)
    edge.label_x, edge.label_y = middle[0], middle[1] - 4


def _bezier(p0, p1, p2, t: float) -> tuple[float, float]:
    u = 1 - t
    return (
        u * u * p0[0] + 2 * u * t * p1[0] + t * t * p2[0],
        u * u * p0[1] + 2 * u * t * p1[1] + t * t * p2[1],
    )


def _inside(node: Node, point, pad: float = 4.0) -> bool:
    return abs(point[0] - node.x) <= NODE_W / 2 + pad and abs(point[1] - node.y) <= NODE_H / 2 + pad


def _curve_hits(node: Node, p0, p1, p2) -> bool:
    return any(_inside(node, _bezier(p0, p1, p2, t / 24), pad=10.0) for t in range(1, 24))
