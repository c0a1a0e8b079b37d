"""Line charts drawn on the server: where each line, point, gridline and label of an SVG goes.

Pure functions from timed values to a ``Chart`` of coordinates and strings; the partial
``templates/partials/metrics_chart.html`` draws it, so every label passes Jinja's
autoescaping and no markup is built here. Long ranges come bucketed to at most
``MAX_POINTS`` points (``SnapshotRepository.buckets``): each point keeps its bucket's mean
(the line) and its peak (the light area above it), so a short spike still shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dashboard.humanize import duration_ms, exact

MAX_POINTS = 300
WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 704, 12, 190  # the plot's box inside the SVG
Y_INTERVALS = 4
MAX_X_TICKS = 6
NICE_STEPS = (1, 2, 2.5, 5, 10)
TIME_STEPS = tuple(
    timedelta(minutes=m) for m in (1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Sample:
    """One point of a series: a snapshot's value, or the mean and peak of a bucket of them."""

    at: datetime
    value: float
    peak: float
    count: int = 1
    until: datetime | None = None  # the bucket's last snapshot, when it holds several

    @property
    def middle(self) -> datetime:
        return self.at if self.until is None else self.at + (self.until - self.at) / 2


@dataclass(frozen=True)
class Unit:
    name: str  # after an exact value in a hover title
    axis: Callable[[float], str]  # a humanised gridline label


def number_label(value: float) -> str:
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{round(value / size, 3):g}{suffix}"
    return f"{round(value, 3):g}"


PER_MINUTE = Unit("jobs/min", number_label)
MILLISECONDS = Unit("ms", duration_ms)


@dataclass(frozen=True)
class Tick:
    at: float  # the x (time axis) or y (value axis) coordinate
    label: str


@dataclass(frozen=True)
class Mark:
    x: float
    y: float
    title: str  # the exact value(s) and time(s), shown on hover and read on focus
    lone: bool  # no neighbour to draw a line to: the mark shows without hovering


@dataclass(frozen=True)
class Chart:
    title: str
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    lines: list[str]  # SVG path data, one per unbroken run of points
    areas: list[str]
    marks: list[Mark]
    width: int = WIDTH
    height: int = HEIGHT
    left: float = LEFT
    right: float = RIGHT
    top: float = TOP
    bottom: float = BOTTOM


def line_chart(
    samples: list[Sample],
    start: datetime,
    end: datetime,
    *,
    title: str,
    unit: Unit,
    gap: timedelta | None = None,
) -> Chart:
    """The chart of ``samples`` over start..end; a line breaks where points are ``gap`` apart."""
    ticks = value_ticks(max((s.peak for s in samples), default=0.0))
    top_value = ticks[-1]

    def x_of(moment: datetime) -> float:
        return round(LEFT + (moment - start) / (end - start) * (RIGHT - LEFT), 1)

    def y_of(value: float) -> float:
        return round(BOTTOM - value / top_value * (BOTTOM - TOP), 1)

    lines, areas, marks = [], [], []
    for run in runs(samples, gap):
        xs = [x_of(s.middle) for s in run]
        line = [(x, y_of(s.value)) for x, s in zip(xs, run, strict=True)]
        peaks = [(x, y_of(s.peak)) for x, s in zip(xs, run, strict=True)]
        if len(run) > 1:
            lines.append(_path(line))
            areas.append(_path([(xs[0], BOTTOM), *peaks, (xs[-1], BOTTOM)]) + " Z")
        marks += [
            Mark(x, y, hover_title(s, unit), len(run) == 1)
            for (x, y), s in zip(line, run, strict=True)
        ]
    return Chart(
        title=title,
        x_ticks=[Tick(x_of(moment), label) for moment, label in time_ticks(start, end)],
        y_ticks=[Tick(y_of(value), unit.axis(value)) for value in ticks],
        lines=lines,
        areas=areas,
        marks=marks,
    )


def runs(samples: list[Sample], gap: timedelta | None) -> list[list[Sample]]:
    """Samples split where two neighbours are more than ``gap`` apart (no snapshots there)."""
    found: list[list[Sample]] = []
    for sample in samples:
        if found and (gap is None or sample.middle - found[-1][-1].middle <= gap):
            found[-1].append(sample)
        else:
            found.append([sample])
    return found


def _path(points: list[tuple[float, float]]) -> str:
    return " ".join(f"{'L' if i else 'M'}{x:g},{y:g}" for i, (x, y) in enumerate(points))


def hover_title(sample: Sample, unit: Unit) -> str:
    if sample.until is None:
        return f"{exact(sample.at)}: {exact_value(sample.value)} {unit.name}"
    return (
        f"{exact(sample.at)} to {exact(sample.until)}: average {exact_value(sample.value)}, "
        f"peak {exact_value(sample.peak)} {unit.name} ({sample.count} snapshots)"
    )


def exact_value(value: float) -> str:
    return f"{round(value, 3):,}"


def value_ticks(highest: float) -> list[float]:
    """0 to a round number at or above ``highest`` in 3 or 4 round steps (4 or 5 gridlines)."""
    if not highest > 0 or not math.isfinite(highest):
        highest = 1.0
    raw = highest / Y_INTERVALS
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in NICE_STEPS if m * magnitude >= raw * (1 - 1e-9))
    count = math.ceil(highest / step - 1e-9)
    return [round(n * step, 12) for n in range(count + 1)]


def time_ticks(start: datetime, end: datetime) -> list[tuple[datetime, str]]:
    """Round UTC times across start..end, at most ``MAX_X_TICKS``; midnight shows the date."""
    span = end - start
    step = next((s for s in TIME_STEPS if span / s <= MAX_X_TICKS), TIME_STEPS[-1])
    moment = EPOCH + math.ceil((start - EPOCH) / step) * step
    ticks = []
    while moment <= end:
        midnight = moment.hour == moment.minute == 0
        ticks.append((moment, f"{moment:%b} {moment.day}" if midnight else f"{moment:%H:%M}"))
        moment += step
    return ticks
