"""Server-rendered SVG for the trend chart (no JavaScript, no inline styles)."""

from __future__ import annotations

import datetime as dt

from apps.reminders.selectors import TREND_DAYS

WIDTH, HEIGHT, PAD = 640, 180, 24
COLOURS = {"fresh": "#2e7d32", "due": "#f9a825", "stale": "#c62828", "suspect": "#6a1b9a"}


def trend_chart(points: list[dict], *, today: dt.date) -> dict:
    """Polyline coordinates for each state over the last 12 weeks (days without a snapshot are
    skipped), plus axis labels. The template draws them."""
    start = today - dt.timedelta(days=TREND_DAYS - 1)
    top = max([sum(p[s] or 0 for s in COLOURS) for p in points] + [1])
    span_x = WIDTH - 2 * PAD
    span_y = HEIGHT - 2 * PAD

    def xy(day: dt.date, value: int) -> str:
        x = PAD + span_x * (day - start).days / (TREND_DAYS - 1)
        y = HEIGHT - PAD - span_y * value / top
        return f"{x:.1f},{y:.1f}"

    lines = []
    for state, colour in COLOURS.items():
        coords = " ".join(xy(p["day"], p[state] or 0) for p in points)
        latest = points[-1][state] if points else 0
        lines.append({"state": state, "colour": colour, "points": coords, "latest": latest})
    weeks = []
    for i in range(0, TREND_DAYS, 14):
        day = start + dt.timedelta(days=i)
        weeks.append(
            {"x": f"{PAD + span_x * i / (TREND_DAYS - 1):.1f}", "label": day.strftime("%d %b")}
        )
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "lines": lines,
        "weeks": weeks,
        "top": top,
        "top_y": PAD,
        "base_y": HEIGHT - PAD,
        "left": PAD,
        "right": WIDTH - PAD,
        "empty": not points,
    }
