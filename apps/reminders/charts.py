"""The health dashboard's 12-week trend, drawn as server-rendered SVG (no JavaScript, no inline
styles: colours and sizes come from static/css/reminders.css).

The plot is a stacked area chart of the daily snapshots: x in days (one unit per day, 84 in
all), y in pixels of a fixed-height plot, so the browser may stretch it to any width without
distorting anything vertical. Axis labels and the legend are HTML or a fixed-size SVG, so text
stays at its real size on a phone and on a wide screen.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apps.reminders.selectors import TREND_DAYS

STATES = ("fresh", "due", "stale", "suspect")  # bottom to top
# The snapshots count never-verified records with the fresh ones (neither needs a look yet).
LABELS = {
    "fresh": "Fresh or not yet verified",
    "due": "Due",
    "stale": "Stale",
    "suspect": "Suspect",
}
HEIGHT = 220  # px, the plot's CSS height (static/css/reminders.css: .trend-plot)
TOP_PAD = 10  # px kept free above the highest tick, so its label is not cut off
WEEKS = TREND_DAYS // 7


@dataclass
class Tick:
    value: int
    y: float


def nice_ticks(highest: int, *, most: int = 5) -> list[int]:
    """0 and evenly spaced round values (1, 2, 5 x 10^n apart) up to at least `highest`."""
    highest = max(int(highest), 1)
    raw = highest / (most - 1)
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw and m * magnitude >= 1)
    count = math.ceil(highest / step)
    return [i * step for i in range(count + 1)]


def _fmt(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def trend_chart(points: list[dict], *, today: dt.date) -> dict:
    """Everything the template needs to draw the trend of `points` (one dict per day that has a
    snapshot: day, fresh, due, stale, suspect), for the 12 weeks ending `today`."""
    start = today - dt.timedelta(days=TREND_DAYS - 1)
    points = [
        {"day": p["day"], **{s: int(p.get(s) or 0) for s in STATES}}
        for p in points
        if start <= p["day"] <= today
    ]
    weeks: list[dict[str, Any]] = [
        {"start": start + dt.timedelta(days=7 * i), "x": 7 * i} for i in range(WEEKS)
    ]
    if not points:
        return {"empty": True, "weeks": weeks, "height": HEIGHT, "days": TREND_DAYS}

    ticks_values = nice_ticks(max(sum(p[s] for s in STATES) for p in points))
    top = ticks_values[-1]

    def y(value: float) -> float:
        return HEIGHT - (HEIGHT - TOP_PAD) * value / top

    first, last = points[0], points[-1]
    summary = ", ".join(f"{LABELS[s].lower()} {first[s]} to {last[s]}" for s in STATES)
    return {
        "empty": False,
        "height": HEIGHT,
        "days": TREND_DAYS,
        "ticks": [Tick(value=v, y=round(y(v), 1)) for v in ticks_values],
        "areas": _areas(points, start, y),
        "weeks": weeks,
        "legend": _legend(first, last),
        "table": _weekly(points, weeks, start),
        "since": first["day"],
        "latest": last["day"],
        "summary": f"Records per freshness state from {first['day']:%d %b} to "
        f"{last['day']:%d %b}: {summary}.",
    }


def _areas(points: list[dict], start: dt.date, y: Callable[[float], float]) -> list[dict]:
    """One stacked polygon per state (and its upper edge), in plot units."""
    # Each snapshot covers its day: [d, d + 1). Inner points sit mid-day; the first and last
    # snapshot are stretched to their day's edges, so even a single snapshot shows as a bar.
    xs: list[float] = []
    for i, p in enumerate(points):
        d = (p["day"] - start).days
        if i == 0:
            xs.append(d)
        xs.append(d + 0.5)
        if i == len(points) - 1:
            xs.append(d + 1)
    stacked: list[list[int]] = []
    for p in points:
        running, row = 0, []
        for s in STATES:
            running += p[s]
            row.append(running)
        stacked.append(row)
    rows = [stacked[0], *stacked, stacked[-1]]

    areas = []
    for k, state in enumerate(STATES):
        upper = [(x, y(r[k])) for x, r in zip(xs, rows, strict=True)]
        lower = [(x, y(r[k - 1] if k else 0)) for x, r in zip(xs, rows, strict=True)]
        polygon = " ".join(f"{_fmt(a)},{_fmt(b)}" for a, b in upper + lower[::-1])
        edge = " ".join(f"{_fmt(a)},{_fmt(b)}" for a, b in upper)
        areas.append({"state": state, "label": LABELS[state], "polygon": polygon, "edge": edge})
    return areas


def _legend(first: dict, last: dict) -> list[dict]:
    """Each state's latest count and share, and how its share moved since the first snapshot."""
    first_total = sum(first[s] for s in STATES) or 1
    last_total = sum(last[s] for s in STATES) or 1
    legend = []
    for state in STATES:
        change = round(100 * last[state] / last_total) - round(100 * first[state] / first_total)
        legend.append(
            {
                "state": state,
                "label": LABELS[state],
                "count": last[state],
                "percent": round(100 * last[state] / last_total),
                "change": change,
            }
        )
    return legend


def _weekly(points: list[dict], weeks: list[dict[str, Any]], start: dt.date) -> list[dict]:
    """One row per week: the last snapshot taken in it (the table and, set on each of `weeks`,
    the hover titles)."""
    by_week: dict[int, dict] = {}
    for p in points:
        by_week[(p["day"] - start).days // 7] = p
    table = []
    for i, week in enumerate(weeks):
        snap = by_week.get(i)
        week["snapshot"] = snap
        if snap:
            table.append(
                {
                    "day": snap["day"],
                    **{s: snap[s] for s in STATES},
                    "total": sum(snap[s] for s in STATES),
                }
            )
    return table


def share_bar(shares: list[dict]) -> list[dict]:
    """Segments (x, width in percent) of the one-line stacked bar of freshness shares."""
    x = 0.0
    segments = []
    for share in shares:
        width = share["share"]
        if width > 0:
            segments.append({**share, "x": _fmt(x), "width": _fmt(width)})
        x += width
    return segments
