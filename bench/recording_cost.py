"""The cost of recording: the no-op drain and the one-by-one enqueue, with job records and
metrics off and on.

Run through the throughput benchmark, alone or as the last part of a full run:

    python bench/throughput.py --recording-only --runs 5

The no-op drain by 1 and by 2 processes runs with job records and metrics switched off
(``[records] enabled = false``, in the workers and the producer) and on, in alternating
runs; the ratio is the median of the per-pair ratios (each "on" run over the "off" run
just before it), so drifting load hits both sides of each ratio. Every other drain of the
benchmark records, as the default does. The one-by-one enqueue is measured the same way:
it is the producer's side of the cost, which a web request pays on each ``dispatch()``.
Issue 5's goal of 15% is for the drain; the enqueue has none.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys
from collections.abc import Callable

from bench.harness import Bench, Row, drain, enqueue_one_by_one, reset, table, timed
from core import set_dispatcher
from core.runtime import Runtime
from core.settings import load_settings

RECORDING_PROCESSES = (1, 2)
RECORDING_GOAL = 0.85  # recording on keeps at least this share of the drain rate

Pair = tuple[Row, Row]


def without_recording(bench: Bench) -> Bench:
    """The same bench with job records and metrics off, in the workers and the producer."""
    config = bench.folder / "no-recording.toml"
    config.write_text("[records]\nenabled = false\n")
    env = bench.env | {"SKYLINE_CONFIG": str(config)}
    return dataclasses.replace(bench, env=env, runtime=Runtime(load_settings(environ=env)))


def alternating(bench: Bench, label: str, measure: Callable[[Bench], float], n: int) -> Pair:
    """``measure`` with recording off and on, their runs alternating."""
    off = Row(f"{label}, recording off", n)
    on = Row(f"{label}, recording on", n)
    quiet = without_recording(bench)
    for run in range(bench.runs):
        for row, which in ((off, quiet), (on, bench)):
            print(f"  {row.label}: run {run + 1}/{bench.runs}", file=sys.stderr, flush=True)
            row.seconds.append(measure(which))
    set_dispatcher(bench.runtime.dispatcher)
    return off, on


def recording_pairs(bench: Bench, n: int) -> tuple[list[Pair], Pair]:
    """The drain pairs, by 1 and by 2 processes, and the one-by-one enqueue pair."""

    def draining(processes: int) -> Callable[[Bench], float]:
        return lambda which: drain(which, which.jobs.noop, n, processes, [])

    def enqueuing(which: Bench) -> float:
        reset(which)
        set_dispatcher(which.runtime.dispatcher)
        return timed(lambda: enqueue_one_by_one(which, n))

    drains = [
        alternating(bench, f"drain no-op, {p} process(es)", draining(p), n)
        for p in RECORDING_PROCESSES
    ]
    return drains, alternating(bench, "enqueue no-op, one by one", enqueuing, n)


def recording_table(drains: list[Pair], dispatch: Pair) -> str:
    """All rows, then each pair's ratio: the median of the ratios taken run by run (each
    "on" run against the "off" run just before it, so that load from outside, which
    drifts, hits both sides of a ratio alike), and the ratio of medians beside it."""
    lines = [table([row for pair in [*drains, dispatch] for row in pair]), ""]
    lines += [ratio_line(off, on, RECORDING_GOAL) for off, on in drains]
    lines.append(ratio_line(*dispatch, None))
    return "\n".join(lines)


def ratio_line(off: Row, on: Row, goal: float | None) -> str:
    paired = [b / a for a, b in zip(off.values(), on.values(), strict=True)]
    ratio = statistics.median(paired)
    if goal is None:
        verdict = "no goal"
    else:
        verdict = f"{'within' if ratio >= goal else 'OUTSIDE'} the {1 - goal:.0%} goal"
    of_medians = statistics.median(on.values()) / statistics.median(off.values())
    return (
        f"{on.label.removesuffix(', recording on')}: on / off = {ratio:.3f}, "
        f"recording costs {1 - ratio:.1%} ({verdict}); "
        f"runs: {' '.join(f'{r:.2f}' for r in paired)}; ratio of medians {of_medians:.3f}"
    )
