"""Prefetching: short jobs are reserved several per round trip; held jobs go back unharmed;
an idle worker sends every ack before it sleeps."""

from __future__ import annotations

import threading
import time

import pytest

from core.events import JobProcessing, events
from core.payload import parse
from core.prefetch import DEPTH_MAX, Prefetch
from core.registry import registry
from core.worker import IN_FLIGHT_POLL_S, Worker, WorkerOptions
from tests import jobs
from tests.conftest import wait_until


def make_worker(runtime, **options) -> Worker:
    keys = runtime.settings.signing_keys()
    return Worker(
        runtime.queue(), lambda: runtime.failed_store, registry, keys, WorkerOptions(**options)
    )


@pytest.fixture
def reserved_at_each_start(runtime):
    """How many jobs the queue had reserved as each job started: the one starting and
    those held behind it."""
    counts: list[int] = []

    def count(_: JobProcessing) -> None:
        counts.append(runtime.queue().sizes("default")["reserved"])

    events.listen(JobProcessing, count)
    yield counts
    events.forget(JobProcessing, count)


def waiting(runtime) -> list[tuple[int, int, str | None]]:
    """(n, attempts, lease) of each job on the default queue's ready list, head first."""
    queue, keys = runtime.queue(), runtime.settings.signing_keys()
    ready = queue.client.lrange(queue.keys.queue("default").ready, 0, -1)
    payloads = [parse(raw, keys) for raw in ready]
    return [(p.body["args"][0], p.attempts, p.lease) for p in payloads]


def test_depth_follows_the_jobs_runtime():
    prefetch = Prefetch()
    assert prefetch.depth() == 1, "nothing is known before the first job"
    prefetch.observe(0.000_01)
    assert prefetch.depth() == DEPTH_MAX
    prefetch.observe(0.5)
    assert prefetch.depth() == 1, "one slow job is enough to stop prefetching"
    assert Prefetch(enabled=False).depth() == 1


def test_short_jobs_are_reserved_several_per_round_trip(
    runtime, reserved_at_each_start, record_dir, monkeypatch
):
    monkeypatch.setenv("SKYLINE_TEST_RECORD_DIR", str(record_dir))
    runtime.dispatcher.dispatch([jobs.noop.prepare(n) for n in range(40)])

    assert make_worker(runtime, stop_when_empty=True).run(handle_signals=False) == 0

    assert [r["n"] for r in jobs.runs(record_dir, "noop")] == list(range(40))
    assert reserved_at_each_start[0] == 1, "the first job is reserved alone"
    assert 1 < max(reserved_at_each_start) <= DEPTH_MAX
    assert runtime.queue().sizes("default") == {"ready": 0, "delayed": 0, "reserved": 0}


def test_slow_jobs_are_reserved_one_at_a_time(runtime, reserved_at_each_start):
    runtime.dispatcher.dispatch([jobs.slow.prepare(n, 0.01) for n in range(5)])

    assert make_worker(runtime, stop_when_empty=True).run(handle_signals=False) == 0

    assert reserved_at_each_start == [1] * 5


def test_a_stopping_worker_hands_back_the_jobs_it_holds_unattempted(
    runtime, reserved_at_each_start
):
    runtime.dispatcher.dispatch([jobs.noop.prepare(n) for n in range(10)])
    worker = make_worker(runtime, max_jobs=2)
    worker.prefetch.observe(0.0)

    assert worker.run(handle_signals=False) == 0

    assert reserved_at_each_start[0] == 10, "all ten were reserved at once"
    assert waiting(runtime) == [(n, 0, None) for n in range(2, 10)]
    assert runtime.queue().sizes("default")["reserved"] == 0


def test_jobs_held_behind_a_slow_one_go_back_while_it_runs(
    runtime, reserved_at_each_start, record_dir, monkeypatch
):
    monkeypatch.setenv("SKYLINE_TEST_RECORD_DIR", str(record_dir))
    runtime.dispatcher.dispatch(
        [jobs.slow.prepare(0, 3), *(jobs.noop.prepare(n) for n in range(1, 4))]
    )
    worker = make_worker(runtime)
    worker.prefetch = Prefetch(hold_s=0.2)
    worker.prefetch.observe(0.0)
    thread = threading.Thread(target=worker.run, kwargs={"handle_signals": False})
    thread.start()
    try:
        wait_until(lambda: jobs.runs(record_dir, "slow_start"), message="the slow job starts")
        assert reserved_at_each_start == [4], "the slow job started with three held behind it"

        handed_back = wait_until(lambda: waiting(runtime) if len(waiting(runtime)) == 3 else None)

        assert handed_back == [(1, 0, None), (2, 0, None), (3, 0, None)]
        assert not jobs.runs(record_dir, "slow_end"), "they went back while it still ran"
    finally:
        worker.stop()
        thread.join(timeout=60)


class ObservesOnceTheWorkerWaits(Prefetch):
    """Keeps a finishing job between the end of its lease tracking and the buffering of its
    ack until the worker's main thread is blocked in a wait for a push that began after
    (a wait under way now ends within ``IN_FLIGHT_POLL_S``)."""

    def __init__(self, client) -> None:
        super().__init__()
        self.client = client

    def observe(self, runtime_s: float) -> None:
        later = time.monotonic() + 2 * IN_FLIGHT_POLL_S

        def blocked_in_a_later_wait() -> bool:
            clients = self.client.client_list()
            blocked = any(c["cmd"] == "blpop" and "b" in c["flags"] for c in clients)
            return blocked and time.monotonic() > later

        wait_until(blocked_in_a_later_wait, timeout_s=10, message="the worker never waited")
        super().observe(runtime_s)


def test_a_worker_never_sleeps_on_the_ack_of_a_job_still_finishing(runtime, monkeypatch):
    """Were it to read "nothing running" between the end of the job's lease tracking and
    the buffering of its ack, the worker would sleep (up to 60 s here) on an unsent ack,
    and the job would stay reserved meanwhile."""
    worker = make_worker(runtime, concurrency=4, sleep_s=60, lease_s=60)
    worker.prefetch = ObservesOnceTheWorkerWaits(runtime.queue().client)
    thread = threading.Thread(target=worker.run, kwargs={"handle_signals": False})
    thread.start()
    try:
        runtime.dispatcher.dispatch([jobs.noop.prepare(1)])

        wait_until(
            lambda: runtime.queue().sizes("default") == {"ready": 0, "delayed": 0, "reserved": 0},
            timeout_s=3,
            message="the job was not acked while the worker slept",
        )
    finally:
        worker.stop()
        runtime.dispatcher.dispatch([jobs.noop.prepare(2)])  # wakes the worker to stop
        thread.join(timeout=60)
