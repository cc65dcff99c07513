"""A record's neighbourhood: the records within two links of it, laid out radially with boxes
that never overlap and edges routed around them (drawn as SVG by the record page)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from django.db.models import Q

from apps.records import selectors as record_selectors
from apps.records.models import Link, Record


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
    parent_angle: dict[int, float] = {}
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
