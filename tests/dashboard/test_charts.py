"""Server-side charts: coordinates, hover titles, axes, and gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from dashboard.charts import (
    BOTTOM,
    LEFT,
    MILLISECONDS,
    PER_MINUTE,
    RIGHT,
    TOP,
    Sample,
    line_chart,
    time_ticks,
    value_ticks,
)

START = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
DAY = timedelta(days=1)
END = START + DAY


def one(at: datetime, value: float) -> Sample:
    return Sample(at, value, value)


def chart(samples: list[Sample], unit=PER_MINUTE, **options):
    return line_chart(samples, START, END, title="Throughput", unit=unit, **options)


def test_points_map_to_coordinates_across_the_range_and_from_zero_up():
    samples = [one(START, 0), one(START + DAY / 2, 50), one(END, 100)]

    drawn = chart(samples)

    assert [(m.x, m.y) for m in drawn.marks] == [
        (LEFT, BOTTOM),
        ((LEFT + RIGHT) / 2, (TOP + BOTTOM) / 2),
        (RIGHT, TOP),
    ]
    assert drawn.lines == [f"M{LEFT},{BOTTOM} L{(LEFT + RIGHT) / 2:g},101 L{RIGHT},{TOP}"]
    assert drawn.areas[0].startswith(f"M{LEFT},{BOTTOM} L{LEFT},{BOTTOM}")
    assert drawn.areas[0].endswith(f"L{RIGHT},{BOTTOM} Z")


def test_hover_titles_carry_exact_values_and_times():
    at = START + timedelta(hours=12, minutes=5)
    merged = Sample(at, 12.5, 40.25, 3, at + timedelta(minutes=10))

    single, bucket = chart([one(at, 1234.5678), merged], MILLISECONDS).marks

    assert single.title == "2025-03-01 12:05:00 UTC: 1,234.568 ms"
    assert bucket.title == (
        "2025-03-01 12:05:00 UTC to 2025-03-01 12:15:00 UTC: "
        "average 12.5, peak 40.25 ms (3 snapshots)"
    )


def test_an_empty_series_has_axes_but_no_line_and_no_points():
    drawn = chart([])

    assert drawn.marks == [] and drawn.lines == [] and drawn.areas == []
    assert [t.label for t in drawn.y_ticks] == ["0", "0.25", "0.5", "0.75", "1"]
    assert len(drawn.x_ticks) >= 3


def test_one_point_shows_as_a_lone_mark_without_a_line():
    [mark] = chart([one(START + DAY / 4, 7)]).marks

    assert mark.lone and mark.x == LEFT + (RIGHT - LEFT) / 4
    assert chart([one(START, 7)]).lines == []


def test_a_line_breaks_where_snapshots_are_missing():
    five = timedelta(minutes=5)
    samples = [one(START + n * five, 1) for n in (0, 1, 2, 20, 21)]

    drawn = chart(samples, gap=five * 2.5)

    assert len(drawn.lines) == len(drawn.areas) == 2
    assert [m.lone for m in drawn.marks] == [False] * 5
    assert len(chart(samples).lines) == 1


@pytest.mark.parametrize("highest", [0, 0.3, 1, 1.01, 2, 2.1, 7, 10, 10.1, 99, 1234, 5e6])
def test_value_axis_has_3_to_5_round_gridlines_from_zero_past_the_highest(highest):
    ticks = value_ticks(highest)

    assert 3 <= len(ticks) <= 5
    assert ticks[0] == 0 and ticks[-1] >= highest
    step = ticks[1]
    assert all(t == pytest.approx(n * step) for n, t in enumerate(ticks))
    assert float(f"{step:e}".split("e")[0]) in (1, 2, 2.5, 5)


def test_value_labels_are_humanised():
    assert [t.label for t in chart([one(START, 1800)]).y_ticks] == ["0", "500", "1k", "1.5k", "2k"]
    durations = [t.label for t in chart([one(START, 4000)], MILLISECONDS).y_ticks]
    assert durations == ["0 ms", "1 s", "2 s", "3 s", "4 s"]


def test_time_axis_has_round_utc_times_and_the_date_at_midnight():
    hourly = [label for _, label in time_ticks(START + timedelta(minutes=7), END)]
    assert hourly == ["06:00", "12:00", "18:00", "Mar 2"]
    hour = time_ticks(START + timedelta(minutes=3), START + timedelta(hours=1))
    assert [label for _, label in hour] == ["00:10", "00:20", "00:30", "00:40", "00:50", "01:00"]
    week = [label for _, label in time_ticks(START, START + timedelta(days=7))]
    assert 3 <= len(week) <= 6 and all(label.startswith("Mar") for label in week)
