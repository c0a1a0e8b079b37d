"""bench/recording_cost.py's table: each ratio is taken run by run, the drains are judged
against issue 5's 15% goal, and the one-by-one enqueue, which has no goal, is not."""

from __future__ import annotations

from bench.harness import Row
from bench.recording_cost import ratio_line, recording_table


def rows(label: str, off_s: list[float], on_s: list[float]) -> tuple[Row, Row]:
    return Row(f"{label}, recording off", 100, off_s), Row(f"{label}, recording on", 100, on_s)


def test_the_ratio_is_the_median_of_the_per_run_ratios_not_the_ratio_of_medians():
    # Load drifted: run 2 was slow on both sides; run 3's "on" met a hiccup of its own.
    # Per run, "on" kept 0.9, 0.9 and 0.25 of "off"; the medians' ratio is 45 / 80.
    off, on = rows("drain no-op, 1 process(es)", [1.0, 2.0, 1.25], [1 / 0.9, 2 / 0.9, 5.0])

    line = ratio_line(off, on, 0.85)

    assert line.startswith("drain no-op, 1 process(es): on / off = 0.900, recording costs 10.0%")
    assert "(within the 15% goal)" in line
    assert line.endswith("runs: 0.90 0.90 0.25; ratio of medians 0.562")


def test_a_drain_below_the_goal_is_outside_it_and_the_enqueue_is_judged_against_none():
    drain = rows("drain no-op, 2 process(es)", [1.0, 1.0], [1.5, 1.5])
    enqueue = rows("enqueue no-op, one by one", [1.0, 1.0], [2.0, 2.0])

    text = recording_table([drain], enqueue)

    assert "drain no-op, 2 process(es): on / off = 0.667, recording costs 33.3% (OUTSIDE" in text
    assert "enqueue no-op, one by one: on / off = 0.500, recording costs 50.0% (no goal)" in text
    assert "enqueue no-op, one by one, recording on" in text  # its rows are in the table
