"""Instructions per job, counted by valgrind: the Python cost of Skyline's hot paths.

Run it from the repository root, with the project's virtualenv active and valgrind installed:

    python bench/instructions.py                  # 500 and 1,500 jobs each way
    python bench/instructions.py --jobs 200,600   # quicker

Timings on a shared 2-core virtual machine move by a fifth from one hour to the next;
instruction counts do not, so a change to the producer's or the worker's Python shows here
even when it is lost in the noise of ``bench/throughput.py``. Each measurement runs the
same program twice under ``valgrind --tool=callgrind``, once with the smaller and once with
the larger number of jobs, and divides the difference in instructions by the difference in
jobs, so that start-up, imports and connecting cancel out:

- ``dispatch()`` of a no-op job, one by one, with job records and metrics (the default);
- the same without them (``[records] enabled = false``);
- a worker (``skyline work --stop-when-empty``) draining no-op jobs pushed beforehand in
  bulk, with records and metrics;
- the same worker with 50 slots draining async no-op jobs, which run on its event loop as
  the 10 ms jobs of ``bench/peers.py`` do.

Only the measured Python process is counted: Redis's work and the time spent waiting for it
are not. Everything runs on a private redis-server on a free loopback port and a SQLite file
in a temporary folder; after each drain the queue and the failed store must be empty.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from bench.harness import (
    WORKER,
    Bench,
    check_drained,
    open_bench,
    reset,
    start_redis,
)
from bench.recording_cost import without_recording
from core import dispatch_bulk, set_dispatcher
from core.job import FunctionJob

DISPATCH = "from bench.jobs import noop\nfor _ in range({n}): noop.dispatch()"
BULK = 1000
ASYNC_SLOTS = ["--concurrency", "50"]
COLLECTED = re.compile(r"Collected : (\d+)")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--jobs", default="500,1500", help="the two job counts, smaller first (500,1500)"
    )
    return parser.parse_args()


def instructions(bench: Bench, command: list[str]) -> int:
    """Instructions the command's process executed, as callgrind counts them."""
    out = bench.folder / "callgrind.out"
    valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"]
    result = subprocess.run(
        valgrind + command, env=bench.env, cwd=bench.folder, capture_output=True, text=True
    )
    found = COLLECTED.search(result.stderr)
    if result.returncode != 0 or found is None:
        raise SystemExit(f"{' '.join(command)} failed under valgrind:\n{result.stderr[-2000:]}")
    out.unlink()
    return int(found.group(1))


def dispatching(bench: Bench, n: int) -> int:
    reset(bench)
    return instructions(bench, [sys.executable, "-c", DISPATCH.format(n=n)])


def draining(bench: Bench, n: int) -> int:
    return drained(bench, bench.jobs.noop, n, [])


def draining_async(bench: Bench, n: int) -> int:
    return drained(bench, bench.jobs.async_noop, n, ASYNC_SLOTS)


def drained(bench: Bench, job: FunctionJob, n: int, extra: list[str]) -> int:
    reset(bench)
    set_dispatcher(bench.runtime.dispatcher)
    for first in range(0, n, BULK):
        dispatch_bulk([job.prepare() for _ in range(min(BULK, n - first))])
    counted = instructions(bench, [*WORKER, *extra, "--stop-when-empty"])
    check_drained(bench, f"drain of {n} {job.name} jobs under valgrind")
    return counted


def per_job(bench: Bench, measure: Callable[[Bench, int], int], small: int, large: int) -> float:
    """The difference between two runs, per job: what one more job costs."""
    return (measure(bench, large) - measure(bench, small)) / (large - small)


def main() -> None:
    args = parse_args()
    try:
        small, large = (int(n) for n in args.jobs.split(","))
    except ValueError:
        small = large = 0
    if not 0 < small < large:
        raise SystemExit(f"--jobs {args.jobs}: give two counts, the smaller first, like 500,1500")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    with tempfile.TemporaryDirectory(prefix="skyline-instructions-") as tmp:
        folder = Path(tmp)
        redis_process, redis_url = start_redis(folder)
        try:
            bench = open_bench(folder, redis_url, runs=1)
            rows = [
                ("dispatch(), recording on", per_job(bench, dispatching, small, large)),
                (
                    "dispatch(), recording off",
                    per_job(without_recording(bench), dispatching, small, large),
                ),
                ("worker, no-op job, recording on", per_job(bench, draining, small, large)),
                (
                    "worker, async no-op job, 50 slots",
                    per_job(bench, draining_async, small, large),
                ),
            ]
        finally:
            redis_process.terminate()
            redis_process.wait()
    print(f"Instructions per job (callgrind; runs of {small} and {large} jobs, the difference)")
    width = max(len(label) for label, _ in rows) + 2
    for label, value in rows:
        print(f"{label:<{width}}{value:>12,.0f}")


if __name__ == "__main__":
    main()
