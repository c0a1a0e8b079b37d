"""The data bench/dashboard.py measures the dashboard with, written through Skyline's own code
paths (dispatch, real workers, the repositories), so that it is what production writes.

Random choices come from a fixed seed, so two runs seed the same data.
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from sqlalchemy import func, select

from bench import jobs
from bench.dashboard_rows import (
    customer,
    seed_batches,
    seed_claude_requests,
    seed_failed,
    seed_snapshots,
    snapshots_per_day,
)
from core import PreparedJob, dispatch_bulk
from core.job_record import JobIndex
from core.models import MetricSnapshot
from core.payload import now_ms
from core.runtime import Runtime
from dashboard.context import Dashboard
from dashboard.paging import PER_PAGE

T = TypeVar("T")

RANDOM_SEED = 20_251_123
WORKERS = 2
QUEUES = ("bench", "emails", "images", "payments")  # every queue of bench/jobs.py
# Workers take queues in priority order: jobs pushed all at once would complete queue by
# queue. Pushed in small waves, each drained before the next, they complete interleaved,
# as they do when each queue has its own workers, so a queue filter meets its jobs early.
WAVE = 300
POLL_S = 0.005
MONITORED_TAG = "customer:7"
SILENCED_SHARE = 50  # one silenced heartbeat per 50 completed jobs
PENDING_SHARE = 100  # one pending job per 100 completed jobs
CLAUDE_SHARE = 50  # one Claude request per 50 completed jobs
PENDING_DELAY_S = 3600
REAL_FAILURE_SHARE = 10  # a tenth of the failed jobs fail for real in the workers


@dataclass(frozen=True)
class Sizes:
    completed: int
    failed: int
    batches: int
    days: int
    requests: int  # timed requests per route (the measuring, not the seeding)


@dataclass(frozen=True)
class Bench:
    folder: Path  # the workers' logs go here
    env: dict[str, str]  # what the worker processes run with
    runtime: Runtime


@dataclass(frozen=True)
class Seeded:
    counts: dict[str, int]
    seconds: dict[str, float]  # how long each part of the seeding took
    job_ids: list[tuple[str, str]]  # (job id, what kind of job) for /job/{id}
    batch_id: str  # a batch with failures, when one has them
    completed_before: str  # the cursor of the completed list's second page
    claude_request_id: str  # an answered Claude request, for /ai/requests/{id}
    claude_batch_id: str  # a batch of Claude requests, for /api/claude/batches/{id}


def silenced_count(completed: int) -> int:
    return max(1, completed // SILENCED_SHARE)


def claude_count(completed: int) -> int:
    return max(20, completed // CLAUDE_SHARE)


def pending_count(completed: int) -> int:
    return max(1, completed // PENDING_SHARE)


def real_failure_count(failed: int) -> int:
    return max(1, failed // REAL_FAILURE_SHARE)


# --- jobs through the queue and real workers --------------------------------------------


def completed_job(n: int) -> PreparedJob:
    """Three names on three queues, each job tagged with a customer."""
    kind = (jobs.noop, jobs.send_email, jobs.resize_image)[n % 3]
    tagged = kind.options(tags=[customer(n)])
    return tagged.prepare() if kind is jobs.noop else tagged.prepare(n)


def seed_jobs(bench: Bench, rng: random.Random, completed: int, failing: int) -> None:
    """Completed, silenced and really failing jobs, in a random order, drained by workers."""
    prepared = [completed_job(n) for n in range(completed)]
    prepared += [jobs.heartbeat.prepare() for _ in range(silenced_count(completed))]
    prepared += [jobs.charge_card.options(tags=[customer(n)]).prepare(n) for n in range(failing)]
    rng.shuffle(prepared)
    workers = start_workers(bench)
    try:
        wait_until_listening(bench, workers)
        for start in range(0, len(prepared), WAVE):
            dispatch_bulk(prepared[start : start + WAVE])
            wait_until_drained(bench, workers)
    finally:
        for worker in workers:
            worker.terminate()  # SIGTERM: each finishes its job and exits 0
    codes = [worker.wait() for worker in workers]
    if any(codes):
        raise SystemExit(f"a worker exited with {codes}; worker-0 said:\n{log_tail(bench)}")


def start_workers(bench: Bench) -> list[subprocess.Popen]:
    command = [sys.executable, "-m", "core.cli", "work", ",".join(QUEUES), "--app", "bench.jobs"]
    workers = []
    for i in range(WORKERS):
        with open(bench.folder / f"worker-{i}.log", "w") as log:
            workers.append(
                subprocess.Popen(
                    command, env=bench.env, cwd=bench.folder, stdout=log, stderr=subprocess.STDOUT
                )
            )
    return workers


def wait_until_listening(bench: Bench, workers: list[subprocess.Popen]) -> None:
    """Until every worker blocks on its queues: under load a worker takes seconds to start,
    and one still importing when the drain ends would die of the SIGTERM meant to stop it."""
    client = bench.runtime.queue().client
    while sum(1 for c in client.client_list() if c["cmd"] == "blpop") < len(workers):
        if any(worker.poll() is not None for worker in workers):
            raise SystemExit(f"a worker stopped while starting; worker-0 said:\n{log_tail(bench)}")
        time.sleep(POLL_S)


def wait_until_drained(bench: Bench, workers: list[subprocess.Popen]) -> None:
    """Until every job is acked: nothing ready, delayed or reserved on any queue."""
    queue = bench.runtime.queue()
    while any(any(queue.sizes(name).values()) for name in QUEUES):
        if any(worker.poll() is not None for worker in workers):
            raise SystemExit(f"a worker stopped with jobs left; worker-0 said:\n{log_tail(bench)}")
        time.sleep(POLL_S)


def log_tail(bench: Bench) -> str:
    return (bench.folder / "worker-0.log").read_text()[-2000:]


def seed_pending(completed: int) -> None:
    """Delayed jobs, due in an hour: the pending list's rows."""
    later = [
        jobs.send_email.options(delay=PENDING_DELAY_S, tags=[customer(n)]).prepare(n)
        for n in range(pending_count(completed))
    ]
    dispatch_bulk(later)


# --- all of it ------------------------------------------------------------------------


def seed(bench: Bench, dash: Dashboard, sizes: Sizes) -> Seeded:
    """Seed every part, check the counts, and pick the values the routes' parameters take."""
    rng, now = random.Random(RANDOM_SEED), datetime.now(UTC)
    seconds: dict[str, float] = {}

    def timed(name: str, action: Callable[[], T]) -> T:
        print(f"  seeding {name}", file=sys.stderr, flush=True)
        start = time.perf_counter()
        result = action()
        seconds[name] = time.perf_counter() - start
        return result

    dash.records.monitor(MONITORED_TAG)
    real = real_failure_count(sizes.failed)
    timed("jobs, drained by 2 workers", lambda: seed_jobs(bench, rng, sizes.completed, real))
    timed("pending jobs", lambda: seed_pending(sizes.completed))
    batch_id, in_batches = timed(
        "batches", lambda: seed_batches(dash, rng, sizes.batches, now, sizes.failed - real)
    )
    stored_only = timed(
        "failed jobs", lambda: seed_failed(dash, rng, sizes.failed - real - in_batches, now)
    )
    timed("snapshots", lambda: seed_snapshots(dash, rng, sizes.days, now))
    claude_id, claude_batch = timed(
        "Claude requests",
        lambda: seed_claude_requests(dash, rng, claude_count(sizes.completed), now),
    )
    counts = count(dash)
    check(counts, expected(dash, sizes))
    return Seeded(
        counts=counts,
        seconds=seconds,
        job_ids=job_ids(dash, stored_only),
        batch_id=batch_id,
        completed_before=completed_cursor(dash),
        claude_request_id=claude_id,
        claude_batch_id=claude_batch,
    )


def count(dash: Dashboard) -> dict[str, int]:
    indexes = dash.records.counts()
    with dash.runtime.engine.connect() as connection:
        snapshots = connection.scalar(select(func.count()).select_from(MetricSnapshot))
    return {
        "completed": indexes[JobIndex.COMPLETED],
        "silenced": indexes[JobIndex.SILENCED],
        "pending": indexes[JobIndex.PENDING],
        "failed": dash.failed.count(),
        "failed with a Redis record": indexes[JobIndex.FAILED],
        "batches": dash.batches.count(),
        "snapshots": snapshots or 0,
        f"monitored ({MONITORED_TAG})": dash.records.monitored().get(MONITORED_TAG, 0),
    }


def expected(dash: Dashboard, sizes: Sizes) -> dict[str, int]:
    return {
        "completed": sizes.completed,
        "silenced": silenced_count(sizes.completed),
        "pending": pending_count(sizes.completed),
        "failed": sizes.failed,
        "failed with a Redis record": real_failure_count(sizes.failed),
        "batches": sizes.batches,
        "snapshots": sizes.days * snapshots_per_day(dash),
    }


def check(counts: dict[str, int], wanted: dict[str, int]) -> None:
    wrong = {name: (counts[name], n) for name, n in wanted.items() if counts[name] != n}
    if wrong:
        found = ", ".join(f"{name}: {got} instead of {n}" for name, (got, n) in wrong.items())
        raise SystemExit(f"seeding went wrong: {found}")


def job_ids(dash: Dashboard, stored_only: str | None) -> list[tuple[str, str]]:
    """A completed job, a failed one with its Redis record, one only the failed store holds."""
    found = [
        (page.records[0].id, what)
        for index, what in ((JobIndex.COMPLETED, "completed"), (JobIndex.FAILED, "failed"))
        if (page := dash.records.page(index, limit=1)).records
    ]
    return found + ([(stored_only, "failed, no Redis record")] if stored_only else [])


def completed_cursor(dash: Dashboard) -> str:
    """Where the completed list's second page starts (now, when one page holds them all)."""
    after = dash.records.page(JobIndex.COMPLETED, limit=PER_PAGE).next_before
    return repr(after if after is not None else float(now_ms()))
