"""The peer benchmark's arithmetic and its markdown: medians, ratios, targets.

Pure functions over ``{library: {metric: [values per run]}}``, so they can be tested
without running anything.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

TARGET_RATIO = 1.5  # Skyline at least 1.5x the best peer on rates and pickup latency
FLOOR = "floor"  # redis-py alone (bench/peers/floor_app.py): never a peer, only a bound


@dataclass(frozen=True)
class Metric:
    key: str
    title: str
    unit: str
    higher_is_better: bool


METRICS = (
    Metric("one", "enqueue, one by one", "jobs/s", True),
    Metric("bulk", "enqueue, bulk", "jobs/s", True),
    Metric("noop", "drain no-op, 2 processes", "jobs/s", True),
    Metric("sleep", "drain 10 ms jobs", "jobs/s", True),
    Metric("p50", "pickup p50", "ms", False),
    Metric("p99", "pickup p99", "ms", False),
    Metric("rss", "worker RSS", "MB", False),
)

Runs = dict[str, list[float | None]]


def median(values: list[float | None]) -> float | None:
    """The median of the runs that produced a figure; None when none did."""
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def medians(results: dict[str, Runs]) -> dict[str, dict[str, float | None]]:
    return {lib: {k: median(v) for k, v in runs.items()} for lib, runs in results.items()}


def figure(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "jobs/s":
        return f"{value:,.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def cell(value: float | None, skyline: float | None, unit: str) -> str:
    """The figure and its ratio to Skyline's (the library's figure / Skyline's)."""
    text = figure(value, unit)
    if value is None or not skyline:
        return text
    return f"{text} ({value / skyline:.2f}x)"


def table(figures: dict[str, dict[str, float | None]], notes: dict[str, str]) -> str:
    """One row per library, Skyline first; a note column says what the row did apart."""
    heads = [f"{m.title} ({m.unit})" for m in METRICS]
    lines = ["| library | " + " | ".join(heads) + " | notes |"]
    lines.append("|---|" + "---:|" * len(METRICS) + "---|")
    base = figures.get("skyline", {})
    for lib, row in figures.items():
        cells = [
            figure(row.get(m.key), m.unit)
            if lib == "skyline"
            else cell(row.get(m.key), base.get(m.key), m.unit)
            for m in METRICS
        ]
        lines.append(f"| {lib} | " + " | ".join(cells) + f" | {notes.get(lib, '')} |")
    return "\n".join(lines)


def best_peer(
    figures: dict[str, dict[str, float | None]], metric: Metric
) -> tuple[str, float] | None:
    peers = [
        (lib, row[metric.key])
        for lib, row in figures.items()
        if lib not in ("skyline", FLOOR) and row.get(metric.key) is not None
    ]
    if not peers:
        return None
    pick = max if metric.higher_is_better else min
    return pick(peers, key=lambda pair: pair[1])


def against_best(
    figures: dict[str, dict[str, float | None]], metric: Metric
) -> tuple[str, float, float, float] | None:
    """(best peer, its figure, Skyline's, Skyline's factor over it: above 1 is ahead)."""
    best, value = best_peer(figures, metric), figures.get("skyline", {}).get(metric.key)
    if best is None or value is None:
        return None
    lib, theirs = best
    factor = value / theirs if metric.higher_is_better else theirs / value
    return lib, theirs, value, factor


def run_by_run(results: dict[str, Runs], metric: Metric) -> list[float]:
    """Skyline's factor over each run's own best peer: how far the medians' verdict holds."""
    count = max((len(runs.get(metric.key, [])) for runs in results.values()), default=0)
    factors = []
    for i in range(count):
        one_run = {}
        for lib, runs in results.items():
            values = runs.get(metric.key, [])
            one_run[lib] = {metric.key: values[i] if i < len(values) else None}
        compared = against_best(one_run, metric)
        if compared is not None:
            factors.append(compared[3])
    return factors


def verdicts(results: dict[str, Runs]) -> list[str]:
    """One line per metric: Skyline's median against the best peer's, whether the target
    is met, over several runs the same factor run by run, and what the target asks for
    beside what the floor, redis-py alone, managed.

    Rates and latency aim at 1.5x the best peer; RSS at no more than the leanest peer.
    """
    lines = []
    figures = medians(results)
    for metric in METRICS:
        compared = against_best(figures, metric)
        if compared is None:
            lines.append(f"- {metric.title}: not measured")
            continue
        lib, theirs, value, factor = compared
        goal = 1.0 if metric.key == "rss" else TARGET_RATIO
        met = "met" if factor >= goal else "NOT met"
        line = (
            f"- {metric.title}: Skyline {figure(value, metric.unit)} {metric.unit}, best peer "
            f"{lib} {figure(theirs, metric.unit)} = {factor:.2f}x (target {goal:g}x): {met}"
        )
        factors = run_by_run(results, metric)
        if len(factors) > 1:
            line += "; run by run " + ", ".join(f"{f:.2f}x" for f in factors)
        floor = figures.get(FLOOR, {}).get(metric.key)
        if floor is not None:
            asked = theirs * goal if metric.higher_is_better else theirs / goal
            line += (
                f"; the target asks for {figure(asked, metric.unit)} {metric.unit}, "
                f"redis-py alone did {figure(floor, metric.unit)}"
            )
        lines.append(line)
    return lines


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (1..99), interpolated between samples."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def parse_redis_benchmark(csv_text: str) -> dict[str, float]:
    """Requests per second by test name, from ``redis-benchmark --csv`` output."""
    rates = {}
    for line in csv_text.splitlines():
        fields = [f.strip('"') for f in line.split(",")]
        if len(fields) >= 2 and fields[0] != "test":
            rates[fields[0]] = float(fields[1])
    return rates
