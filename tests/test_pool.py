"""A process pool with real ``skyline work`` processes: pausing workers that are still starting."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from balancer.pool import ProcessPool
from core.payload import parse
from tests import jobs
from tests.conftest import wait_until
from tests.jobs import runs

pytestmark = pytest.mark.slow

STARTUP_S = 20  # a worker imports the app before it reports ready
STAYS_PAUSED_S = 1.0


@pytest.fixture
def pool(worker_env: dict[str, str]) -> Iterator[ProcessPool]:
    pool = ProcessPool("default", ["work", "default", "--sleep", "0.2"], worker_env)
    yield pool
    pool.kill()
    for worker in pool.workers:
        worker.process.wait(timeout=10)
        os.close(worker.status_fd)


def tick(pool: ProcessPool) -> None:
    """What the supervisor does each tick that matters here: read the status pipes."""
    pool.read_status(time.monotonic())


def all_ready(pool: ProcessPool) -> bool:
    tick(pool)
    assert all(w.process.poll() is None for w in pool.workers), "a starting worker died"
    return all(w.ready for w in pool.workers)


def stays_queued(pool: ProcessPool, runtime, record_dir: Path, duration_s: float) -> None:
    """The one bounded wait that is itself the assertion: no paused worker runs the job.

    A worker that was waiting for a push when the pause came may reserve the job as it
    wakes; it hands it straight back, unattempted, so the job ends up waiting as before."""
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline:
        tick(pool)
        assert all(w.process.poll() is None for w in pool.workers), "a paused worker died"
        assert not runs(record_dir, "noop"), "a paused worker ran a job"
        time.sleep(0.05)
    queue = runtime.queue()
    [raw] = queue.client.lrange(queue.keys.queue("default").ready, 0, -1)
    assert parse(raw, runtime.settings.signing_keys()).attempts == 0


def test_pausing_right_after_spawning_leaves_the_workers_alive_and_paused(
    runtime, pool, record_dir
):
    pool.scale(2, time.monotonic())
    pool.pause()
    wait_until(lambda: all_ready(pool), timeout_s=STARTUP_S)
    jobs.noop.dispatch(1)

    stays_queued(pool, runtime, record_dir, STAYS_PAUSED_S)

    pool.resume()
    wait_until(lambda: runs(record_dir, "noop"))


def test_a_worker_spawned_while_the_pool_is_paused_stays_alive_and_paused(
    runtime, pool, record_dir
):
    pool.pause()
    pool.scale(1, time.monotonic())
    jobs.noop.dispatch(1)
    wait_until(lambda: all_ready(pool), timeout_s=STARTUP_S)

    stays_queued(pool, runtime, record_dir, STAYS_PAUSED_S)

    pool.resume()
    wait_until(lambda: runs(record_dir, "noop"))


def test_continuing_before_a_paused_worker_is_ready_lets_it_work(runtime, pool, record_dir):
    pool.pause()
    pool.scale(1, time.monotonic())
    pool.resume()
    jobs.noop.dispatch(1)

    wait_until(lambda: all_ready(pool) and runs(record_dir, "noop"), timeout_s=STARTUP_S)
