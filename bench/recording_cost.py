"""The cost of recording: the no-op drain with job records and metrics off and on.

Run through the throughput benchmark, alone or as the last part of a full run:

    python bench/throughput.py --recording-only --runs 5

The no-op drain by 1 and by 2 processes runs with job records and metrics switched off
(``[records] enabled = false``, in the workers and the producer) and on, in alternating
runs; the ratio is the median of the per-pair ratios (each "on" run over the "off" run
just before it), so drifting load hits both sides of each ratio. Every other drain of the
benchmark records, as the default does.
"""

from __future__ import annotations

import dataclasses
import statistics
import sys

from bench.harness import Bench, Row, drain, table
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


def recording_rows(bench: Bench, n: int, processes: int) -> Pair:
    """The no-op drain with recording off and on, their runs alternating."""
    off = Row(f"drain no-op, {processes} process(es), recording off", n)
    on = Row(f"drain no-op, {processes} process(es), recording on", n)
    quiet, noop = without_recording(bench), bench.jobs.noop
    for run in range(bench.runs):
        for row, which in ((off, quiet), (on, bench)):
            print(f"  {row.label}: run {run + 1}/{bench.runs}", file=sys.stderr, flush=True)
            row.seconds.append(drain(which, noop, n, processes, []))
    set_dispatcher(bench.runtime.dispatcher)
    return off, on


def recording_pairs(bench: Bench, n: int) -> list[Pair]:
    return [recording_rows(bench, n, p) for p in RECORDING_PROCESSES]


def recording_table(pairs: list[Pair]) -> str:
    """Both rows, and their ratio taken run by run: each "on" run against the "off" run
    just before it, so that load from outside, which drifts, hits both sides of a ratio
    alike; the median of those ratios is the figure, and the ratio of medians is shown too."""
    lines = [table([row for pair in pairs for row in pair]), ""]
    for off, on in pairs:
        paired = [b / a for a, b in zip(off.values(), on.values(), strict=True)]
        ratio = statistics.median(paired)
        verdict = "within" if ratio >= RECORDING_GOAL else "OUTSIDE"
        of_medians = statistics.median(on.values()) / statistics.median(off.values())
        lines.append(
            f"{on.label.removesuffix(', recording on')}: on / off = {ratio:.3f}, "
            f"recording costs {1 - ratio:.1%} ({verdict} the 15% goal); "
            f"runs: {' '.join(f'{r:.2f}' for r in paired)}; ratio of medians {of_medians:.3f}"
        )
    return "\n".join(lines)
