"""The trend chart's geometry, checked against numbers worked out by hand."""

import datetime as dt

import pytest

from apps.reminders import charts

TODAY = dt.date(2026, 12, 2)
START = TODAY - dt.timedelta(days=83)  # 10 Sep 2026: 84 days, 12 weeks


@pytest.mark.parametrize(
    ("highest", "ticks"),
    [
        (0, [0, 1]),
        (1, [0, 1]),
        (3, [0, 1, 2, 3]),
        (7, [0, 2, 4, 6, 8]),
        (50, [0, 20, 40, 60]),
        (100, [0, 50, 100]),
        (1234, [0, 500, 1000, 1500]),
    ],
)
def test_ticks_are_round_numbers_covering_the_highest_value(highest, ticks):
    assert charts.nice_ticks(highest) == ticks


def test_a_single_snapshot_is_drawn_as_a_one_day_column_stacked_in_state_order():
    chart = charts.trend_chart(
        [{"day": TODAY, "fresh": 4, "due": 1, "stale": 2, "suspect": 1}], today=TODAY
    )
    # 8 records: ticks 0, 2, 4, 6, 8; the plot is 220 px high with 10 px kept above 8.
    assert [t.value for t in chart["ticks"]] == [0, 2, 4, 6, 8]
    assert [t.y for t in chart["ticks"]] == [220, 167.5, 115, 62.5, 10]
    fresh, due, stale, suspect = chart["areas"]
    # Today is day 83 of 0..83: the column spans x = 83 to 84 (the right edge).
    assert fresh["polygon"] == "83,115 83.5,115 84,115 84,220 83.5,220 83,220"
    assert due["polygon"].startswith("83,88.75 ")  # 5 records: 220 - 210 * 5 / 8
    assert stale["polygon"].startswith("83,36.25 ")  # 7 records: 220 - 210 * 7 / 8
    assert suspect["edge"] == "83,10 83.5,10 84,10"
    assert [(entry["label"], entry["count"], entry["percent"]) for entry in chart["legend"]] == [
        ("Fresh or not yet verified", 4, 50),
        ("Due", 1, 12),
        ("Stale", 2, 25),
        ("Suspect", 1, 12),
    ]


def test_the_legend_tells_the_change_over_the_period_and_the_table_one_row_a_week():
    points = [
        {"day": START, "fresh": 2, "due": 0, "stale": 8, "suspect": 0},
        {"day": START + dt.timedelta(days=1), "fresh": 3, "due": 0, "stale": 7, "suspect": 0},
        {"day": TODAY, "fresh": 8, "due": 1, "stale": 0, "suspect": 1},
        {"day": START - dt.timedelta(days=1), "fresh": 99, "due": 0, "stale": 0, "suspect": 0},
    ]
    chart = charts.trend_chart(points, today=TODAY)
    legend = {entry["state"]: entry for entry in chart["legend"]}
    assert (legend["fresh"]["percent"], legend["fresh"]["change"]) == (80, 60)
    assert (legend["stale"]["percent"], legend["stale"]["change"]) == (0, -80)
    # The snapshot from before the 12 weeks is left out; weeks 1 and 12 have snapshots.
    assert chart["since"] == START
    assert [row["day"] for row in chart["table"]] == [START + dt.timedelta(days=1), TODAY]
    assert [w["start"] for w in chart["weeks"]][:2] == [START, START + dt.timedelta(days=7)]
    assert len(chart["weeks"]) == 12
    assert chart["summary"].startswith("Records per freshness state from 10 Sep to 02 Dec")


def test_no_snapshots_means_an_empty_chart():
    assert charts.trend_chart([], today=TODAY)["empty"] is True


def test_share_bar_segments_add_up_to_the_whole_width():
    shares = [
        {"state": "fresh", "share": 50.0},
        {"state": "due", "share": 0.0},
        {"state": "stale", "share": 100 / 3},
        {"state": "suspect", "share": 100 / 6},
    ]
    segments = charts.share_bar(shares)
    assert [(s["state"], s["x"], s["width"]) for s in segments] == [
        ("fresh", "0", "50"),
        ("stale", "50", "33.33"),
        ("suspect", "83.33", "16.67"),
    ]
