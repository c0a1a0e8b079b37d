"""Metrics: counters that match what the test did, measured waits, and an exact take."""

from __future__ import annotations

import math
import subprocess
import time
from collections import Counter

import pytest
import redis

from core import dispatch_bulk
from core.execution import WorkerDefaults
from core.keys import Keys
from core.live_metrics import QueueFigures, live_figures
from core.metrics import WAIT_BUCKETS_MS, MetricsRepository, MetricTotals, wait_bucket
from core.payload import now_ms
from core.queue import RedisQueue
from core.recording import Recorder
from core.records import JobRecordRepository
from core.registry import registry
from core.runtime import Runtime
from core.settings import RecordSettings
from core.worker import Worker, WorkerOptions
from tests import jobs
from tests.conftest import wait_until
from tests.jobs import runs
from tests.test_queue import CountingConnection

WORKER_EXIT_S = 60


@pytest.fixture
def recorder(runtime: Runtime) -> Recorder:
    recorder = runtime.dispatcher.recorder()
    assert recorder is not None
    return recorder


@pytest.fixture
def metrics(recorder: Recorder) -> MetricsRepository:
    return recorder.metrics


@pytest.fixture
def records(recorder: Recorder) -> JobRecordRepository:
    return recorder.records


@pytest.fixture
def work(start_worker):
    def run(*args: str) -> subprocess.Popen:
        process = start_worker(*args, "--stop-when-empty")
        assert process.wait(timeout=WORKER_EXIT_S) == 0, process.log_path.read_text()
        return process

    return run


def totals_by_name(totals: list[MetricTotals]) -> dict[tuple[str, str], MetricTotals]:
    return {(t.kind, t.name): t for t in totals}


def counts(t: MetricTotals) -> tuple[int, int, int]:
    return t.pushed, t.processed, t.failed


def test_the_counters_match_what_the_jobs_did(runtime, metrics, work):
    for n in range(5):
        jobs.noop.dispatch(n)
    jobs.noop.options(queue="other").dispatch(5)
    jobs.raises.dispatch(1)  # one try: fails at once
    jobs.raises.dispatch(2)
    jobs.always_fails.dispatch(3)  # three tries: released twice, then failed
    work("default,other")

    totals = totals_by_name(metrics.take_interval())

    assert counts(totals[("job", "tests.jobs.noop")]) == (6, 6, 0)
    assert counts(totals[("job", "tests.jobs.raises")]) == (2, 2, 2)
    assert counts(totals[("job", "tests.jobs.always_fails")]) == (1, 3, 1)
    assert counts(totals[("queue", "default")]) == (8, 10, 3)
    assert counts(totals[("queue", "other")]) == (1, 1, 0)
    for t in totals.values():
        assert sum(t.wait_buckets.values()) == t.processed  # one measured wait per attempt
        assert list(t.wait_buckets) == list(WAIT_BUCKETS_MS)
    assert metrics.take_interval() == []  # taking resets


def test_runtimes_agree_with_the_clock(runtime, metrics, work, record_dir):
    for n in range(3):
        jobs.slow.dispatch(n, 0.2)
    started = time.monotonic()
    work()
    elapsed_ms = (time.monotonic() - started) * 1000

    [slow] = [t for t in metrics.take_interval() if t.name == "tests.jobs.slow"]

    begun = {line["n"]: line["t"] for line in runs(record_dir, "slow_start")}
    ended = {line["n"]: line["t"] for line in runs(record_dir, "slow_end")}
    measured_ms = [(ended[n] - begun[n]) * 1000 for n in range(3)]
    assert slow.runtime_ms_total == pytest.approx(sum(measured_ms), abs=3 * 5)
    assert slow.runtime_ms_max == pytest.approx(max(measured_ms), abs=5)
    assert 3 * 200 <= slow.runtime_ms_total < elapsed_ms


def test_the_wait_histogram_holds_the_waits_of_jobs_held_back(
    runtime, metrics, records, start_worker
):
    held = [jobs.bare_noop.dispatch() for _ in range(4)]
    delayed = jobs.bare_noop.options(delay=3).dispatch()
    held_since = now_ms()
    worker = start_worker()  # it takes a while to start: the jobs wait
    worker_started = now_ms()

    assert wait_until(lambda: records.get(delayed).completed_at, timeout_s=20)
    worker.terminate()
    assert worker.wait(timeout=WORKER_EXIT_S) == 0

    [total] = [t for t in metrics.take_interval() if t.kind == "job"]
    waits = {job_id: wait_ms(records, job_id) for job_id in [*held, delayed]}
    expected = Counter(WAIT_BUCKETS_MS[wait_bucket(wait)] for wait in waits.values())
    assert {bound: n for bound, n in total.wait_buckets.items() if n} == expected
    assert all(waits[job_id] >= worker_started - held_since for job_id in held)
    assert waits[delayed] < min(waits[job_id] for job_id in held)  # counted from when it was due
    assert total.wait_percentile(0) <= min(waits.values())
    assert total.wait_percentile(100) >= max(waits.values())


def wait_ms(records: JobRecordRepository, job_id: str) -> int:
    record = records.get(job_id)
    return record.reserved_at - record.available_at


def test_wait_percentiles_interpolate_within_their_bucket():
    def totals(waits: dict[float, int]) -> MetricTotals:
        buckets = dict.fromkeys(WAIT_BUCKETS_MS, 0) | waits
        return MetricTotals("queue", "q", 0, 0, 0, 0.0, 0.0, buckets)

    spread = totals({25: 10, 50: 10})
    assert spread.wait_percentile(50) == 25
    assert spread.wait_percentile(75) == 37.5
    assert spread.wait_percentile(100) == 50
    assert spread.wait_percentile(0) == 10
    assert totals({}).wait_percentile(95) == 0
    assert totals({math.inf: 3}).wait_percentile(50) == 3_600_000
    with pytest.raises(ValueError):
        spread.wait_percentile(101)


def test_taking_the_interval_under_two_busy_workers_loses_and_doubles_nothing(
    runtime, metrics, start_worker
):
    total = 3000
    dispatch_bulk([jobs.bare_noop.prepare() for _ in range(total)])
    workers = [start_worker("--stop-when-empty") for _ in range(2)]

    taken: list[MetricTotals] = []
    while any(worker.poll() is None for worker in workers):
        taken += metrics.take_interval()
    assert [worker.returncode for worker in workers] == [0, 0]
    taken += metrics.take_interval()

    jobs_taken = [t for t in taken if t.kind == "job"]
    assert sum(t.processed for t in jobs_taken) == total
    assert sum(t.pushed for t in jobs_taken) == total
    assert sum(t.processed for t in taken if t.kind == "queue") == total
    assert len([t for t in jobs_taken if t.processed]) > 2  # takes fell between increments


def test_live_figures(runtime, metrics, records, work):
    for n in range(3):
        jobs.noop.dispatch(n)
    jobs.fails_itself.dispatch()
    jobs.slow.options(queue="slow").dispatch(1, 0.3)
    work("default,slow")
    waiting = jobs.noop.options(queue="waiting").dispatch(9)
    now = now_ms() + 5000

    live = live_figures(runtime.queue(), metrics, now)

    assert live.jobs_past_hour == 5
    assert live.failed_past_7_days == 1
    assert 5 * (1 - now % 60_000 / 60_000) <= live.jobs_per_minute <= 5
    queues = {q.name: q for q in live.queues}
    assert set(queues) == {"default", "slow", "waiting"}
    assert (queues["waiting"].ready, queues["default"].ready) == (1, 0)
    assert queues["waiting"].oldest_wait_ms == now - records.get(waiting).available_at
    assert queues["slow"].runtime_ms_average >= 300
    assert (queues["default"].jobs_past_hour, queues["slow"].jobs_past_hour) == (4, 1)
    assert live.max_wait_queue == "waiting"
    assert live.max_runtime_queue == "slow"
    assert live.max_throughput_queue == "default"


def test_recording_can_be_switched_off(settings, redis_client, work, worker_env, tmp_path):
    runtime = Runtime(settings.model_copy(update={"records": RecordSettings(enabled=False)}))
    config = tmp_path / "off.toml"
    config.write_text("[records]\nenabled = false\n")
    worker_env["SKYLINE_CONFIG"] = str(config)

    assert runtime.dispatcher.recorder() is None
    runtime.dispatcher.dispatch([jobs.noop.prepare(1), jobs.raises.prepare(2)])
    work()

    assert redis_client.dbsize() == 0  # no record, index or counter; the queue is empty


def test_recording_adds_no_round_trip_per_job(runtime, redis_url):
    def round_trips(recording: bool, jobs_count: int) -> int:
        runtime.dispatcher.dispatch([jobs.bare_noop.prepare() for _ in range(jobs_count)])
        pool = redis.ConnectionPool.from_url(redis_url, connection_class=CountingConnection)
        client, keys = redis.Redis(connection_pool=pool), Keys(runtime.settings.prefix)
        recorder = Recorder.open(client, keys, RecordSettings()) if recording else None
        worker = Worker(
            RedisQueue(client, keys),
            lambda: runtime.failed_store,
            registry,
            runtime.settings.signing_keys(),
            WorkerOptions(stop_when_empty=True, defaults=WorkerDefaults()),
            recorder=recorder,
        )
        CountingConnection.writes = []
        assert worker.run(handle_signals=False) == 0
        pool.disconnect()
        return len(CountingConnection.writes)

    round_trips(True, 1)  # loads the scripts
    recording, plain = round_trips(True, 200), round_trips(False, 200)
    assert plain <= recording <= plain + 1  # + what is left when the worker goes idle


def test_a_queue_wait_is_its_oldest_waiting_job_or_its_measured_p95_whichever_is_longer():
    """So the overview's max wait does not read empty while measured waits are high."""
    quiet = QueueFigures("quiet", 0, 0.0, 100.0, 4_000.0, 5.0, 10)
    busy = QueueFigures("busy", 3, 1_500.0, 50.0, 900.0, 5.0, 10)
    assert (quiet.wait_ms, busy.wait_ms) == (4_000.0, 1_500.0)
