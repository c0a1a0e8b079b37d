"""Metric snapshots: what they store, one taker among racing schedulers, retention, the CLI."""

from __future__ import annotations

import json
import math
import threading
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import redis
from sqlalchemy import Engine, inspect

from core.alerts import WaitAlerts
from core.cooldowns import Alerting, Cooldowns
from core.db import database_engine as create_engine_for
from core.db import migrate
from core.keys import Keys
from core.metrics import WAIT_BUCKETS_MS, MetricsRepository, MetricTotals
from core.queue import RedisQueue
from core.runtime import Runtime
from core.scheduled import ScheduledTasks
from core.scheduler import aligned, start_scheduler, stop_scheduler
from core.schema_revision import SCHEMA_REVISION
from core.settings import MetricsSettings, Settings
from core.snapshot_taker import SnapshotTaker
from core.snapshots import Snapshot, SnapshotRepository, highest_wait_ms, take_snapshot
from tests.conftest import wait_until
from tests.jobs import noop
from tests.test_batch_store import alembic, versions

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
INTERVAL_S = 300
INF = math.inf
HAIR = timedelta(microseconds=1)


def totals(kind: str, name: str, waits: dict[float, int] | None = None, **counts) -> MetricTotals:
    """Totals as core.metrics hands them over, on its own wait buckets."""
    buckets = dict.fromkeys(WAIT_BUCKETS_MS, 0) | (waits or {})
    fields = dict(processed=0, failed=0, pushed=0, runtime_ms_total=0.0, runtime_ms_max=0.0)
    return MetricTotals(kind, name, **(fields | counts), wait_buckets=buckets)


class Counters:
    """Interval counters held in memory; with ``reset=False`` a second taker would show."""

    def __init__(self, totals: list[MetricTotals], *, reset: bool = True) -> None:
        self.totals, self.reset, self.takes = totals, reset, 0
        self.lock = threading.Lock()

    def take_interval(self) -> list[MetricTotals]:
        with self.lock:
            self.takes += 1
            taken = self.totals
            if self.reset:
                self.totals = []
            return taken


class Broken:
    def take_interval(self) -> list[MetricTotals]:
        raise redis.ConnectionError("Redis went away")


EMAILS = totals(
    "job",
    "send_welcome",
    waits={10: 10, 100: 15, 1000: 4, INF: 1},
    processed=30,
    failed=2,
    pushed=33,
    runtime_ms_total=4500.0,
    runtime_ms_max=800.0,
)
DEFAULT_QUEUE = totals(
    "queue",
    "default",
    waits={10: 60},
    processed=60,
    pushed=61,
    runtime_ms_total=600.0,
    runtime_ms_max=40.0,
)


@pytest.fixture
def snapshots(engine: Engine) -> SnapshotRepository:
    return SnapshotRepository(engine)


def row(name: str, taken_at: datetime, kind: str = "job", processed: int = 1) -> Snapshot:
    return Snapshot(kind, name, taken_at, 300.0, 0.2, 5.0, 9.0, 1.0, 2.0, 3.0, processed, 0, 1)


def test_snapshot_stores_one_row_per_job_and_queue(snapshots):
    counters = Counters([EMAILS, DEFAULT_QUEUE])
    taken = take_snapshot(counters, snapshots, T0, interval_s=INTERVAL_S)
    assert [(s.kind, s.name) for s in taken] == [("job", "send_welcome"), ("queue", "default")]
    [emails] = snapshots.series("job", "send_welcome")
    assert emails == Snapshot(
        kind="job",
        name="send_welcome",
        taken_at=T0,
        interval_s=300.0,
        throughput=6.0,  # 30 jobs in 5 minutes
        runtime_avg_ms=150.0,
        runtime_max_ms=800.0,
        wait_p50_ms=pytest.approx(50 + 50 * 5 / 15),  # interpolated in the 50-100 ms bucket
        wait_p95_ms=937.5,
        wait_max_ms=WAIT_BUCKETS_MS[-2],  # the open last bucket counted one: its lower bound
        processed=30,
        failed=2,
        pushed=33,
        id=emails.id,
    )
    [queue] = snapshots.series("queue", "default")
    assert (queue.throughput, queue.runtime_avg_ms, queue.wait_p95_ms, queue.wait_max_ms) == (
        12.0,
        10.0,
        9.5,
        10.0,
    )
    assert counters.takes == 1


def test_an_idle_name_stores_zeroes_not_a_division_error(snapshots):
    idle = totals("queue", "low")
    [taken] = take_snapshot(Counters([idle]), snapshots, T0, interval_s=INTERVAL_S)
    assert (taken.throughput, taken.runtime_avg_ms, taken.wait_p95_ms, taken.wait_max_ms) == (
        0.0,
        0.0,
        0.0,
        0.0,
    )


def taker(client: redis.Redis, snapshots, counters, interval_s: float = INTERVAL_S):
    return SnapshotTaker(client, Keys(), counters, snapshots, interval_s)


def test_the_interval_runs_from_the_previous_take(snapshots, redis_client):
    counters = Counters([])
    by_hand = taker(redis_client, snapshots, counters)
    assert by_hand.take(T0) == []  # nothing happened: no rows, but the interval restarts
    counters.totals = [EMAILS]
    [taken] = by_hand.take(T0 + timedelta(seconds=60))
    assert (taken.interval_s, taken.throughput) == (60.0, 30.0)
    [first] = taker(redis_client, snapshots, Counters([EMAILS])).take(T0 + timedelta(days=30))
    assert first.interval_s == (timedelta(days=30) - timedelta(seconds=60)).total_seconds()


def test_without_a_previous_take_the_interval_is_the_nominal_one(snapshots):
    [taken] = take_snapshot(Counters([EMAILS]), snapshots, T0, interval_s=INTERVAL_S)
    assert taken.interval_s == INTERVAL_S


@pytest.mark.parametrize(
    ("buckets", "highest"),
    [({}, 0.0), ({10: 0, INF: 0}, 0.0), ({10: 1, 100: 2, INF: 0}, 100.0), ({10: 1, INF: 3}, 10.0)],
)
def test_highest_wait_is_a_finite_bucket_bound(buckets, highest):
    assert highest_wait_ms(buckets) == highest


def test_a_week_is_bucketed_in_sql_with_each_buckets_mean_peak_and_count(snapshots):
    five, week = timedelta(minutes=5), timedelta(days=7)
    rows = [row("a", T0 + n * five) for n in range(2016)]
    rows[1000] = replace(rows[1000], throughput=999.0, processed=3)
    snapshots.record([*rows, row("b", T0), row("a", T0 + week)])  # other name; past the end

    buckets = snapshots.buckets("job", "a", T0, T0 + week, ["throughput", "wait_p95_ms"], 300)

    assert len(buckets) == 300  # 6 or 7 snapshots in each 33.6 minutes
    assert (buckets[0].first, buckets[0].last, buckets[0].snapshots) == (T0, T0 + 6 * five, 7)
    assert sum(b.snapshots for b in buckets) == 2016
    assert sum(b.processed for b in buckets) == 2018
    assert [b.first for b in buckets] == sorted(b.first for b in buckets)
    spike = next(b for b in buckets if b.peaks["throughput"] == 999.0)
    assert spike.first <= rows[1000].taken_at <= spike.last
    assert spike.means["throughput"] == pytest.approx(
        (999.0 + 0.2 * (spike.snapshots - 1)) / spike.snapshots
    )
    others = [b for b in buckets if b is not spike]
    assert [b.means["throughput"] for b in others] == pytest.approx([0.2] * len(others))
    assert {b.peaks["wait_p95_ms"] for b in buckets} == {2.0}


def test_sparse_snapshots_stay_one_to_a_bucket_at_their_exact_time(snapshots):
    taken = [T0 + timedelta(hours=h, seconds=7) for h in range(24)]
    snapshots.record([row("a", at, processed=h) for h, at in enumerate(taken)])

    buckets = snapshots.buckets("job", "a", T0, T0 + timedelta(days=1), ["throughput"], 300)

    assert [(b.first, b.last, b.snapshots) for b in buckets] == [(at, at, 1) for at in taken]
    assert [b.processed for b in buckets] == list(range(24))
    assert {(b.means["throughput"], b.peaks["throughput"]) for b in buckets} == {(0.2, 0.2)}


def test_series_names_and_latest(snapshots):
    snapshots.record(
        [
            row("a", T0),
            row("b", T0),
            row("a", T0 + timedelta(minutes=5)),
            row("a", T0 + timedelta(minutes=10), processed=7),
            row("default", T0 + timedelta(minutes=10), kind="queue"),
        ]
    )
    since, until = T0 + timedelta(minutes=5), T0 + timedelta(minutes=10)
    assert [s.taken_at for s in snapshots.series("job", "a", since, until)] == [since]
    assert len(snapshots.series("job", "a")) == 3
    assert snapshots.names("job") == ["a", "b"]
    assert snapshots.names("queue") == ["default"]
    assert [(s.name, s.processed) for s in snapshots.latest("job")] == [("a", 7)]
    assert snapshots.last_taken_at() == until


def test_prune_removes_rows_strictly_before_the_boundary(snapshots):
    before = T0 - timedelta(days=7)
    snapshots.record([row("old", before - HAIR), row("edge", before), row("new", before + HAIR)])
    assert snapshots.prune(before) == 1
    assert snapshots.names("job") == ["edge", "new"]


def test_the_scheduled_prune_keeps_the_retention(snapshots, redis_client, settings):
    tasks = tasks_for(settings, redis_client, snapshots, Counters([]))
    assert settings.metrics.retention_days == 7
    boundary = T0 - timedelta(days=7)
    snapshots.record([row("old", boundary - HAIR), row("edge", boundary)])
    assert tasks.prune(T0) == 1
    assert snapshots.names("job") == ["edge"]


def tasks_for(settings: Settings, client: redis.Redis, snapshots, counters) -> ScheduledTasks:
    keys = Keys(settings.prefix)
    alerting = Alerting(Cooldowns(client), keys, settings.alerts, [], "test")
    alerts = WaitAlerts(lambda _: RedisQueue(client, keys), alerting)
    interval_s = settings.metrics.snapshot_interval
    return ScheduledTasks(
        settings, SnapshotTaker(client, keys, counters, snapshots, interval_s), alerts
    )


def run_jobs(skyline, queue: str, count: int) -> None:
    """Jobs pushed and run for real: the worker records the metrics."""
    for n in range(count):
        noop.options(queue=queue).dispatch(n)
    worked = skyline("work", queue, "--stop-when-empty")
    assert worked.returncode == 0, worked.stderr


def test_a_snapshot_stores_what_the_worker_recorded(runtime, skyline, snapshots, redis_client):
    run_jobs(skyline, "emails", 3)
    metrics = MetricsRepository(redis_client, Keys())
    taken = taker(redis_client, snapshots, metrics).take(T0)
    assert [(s.kind, s.name) for s in taken] == [("job", "tests.jobs.noop"), ("queue", "emails")]
    for row_ in taken:
        assert (row_.processed, row_.failed, row_.pushed) == (3, 0, 3)
        assert row_.throughput == 3 / 5
        assert 0 < row_.runtime_avg_ms <= row_.runtime_max_ms < 10_000
        assert 0 <= row_.wait_p50_ms <= row_.wait_p95_ms <= row_.wait_max_ms
    assert metrics.take_interval() == []  # the snapshot reset the interval


def test_two_schedulers_racing_take_one_snapshot(runtime, skyline, snapshots, redis_url):
    run_jobs(skyline, "emails", 2)
    start = threading.Barrier(2)
    results: list[list[Snapshot] | None] = []

    def scheduler() -> None:
        client = redis.Redis.from_url(redis_url)
        own = taker(client, snapshots, MetricsRepository(client, Keys()))
        start.wait()
        results.append(own.take_scheduled(T0))

    threads = [threading.Thread(target=scheduler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    [taken] = [result for result in results if result is not None]
    assert len(results) == 2 and len(taken) == 2
    assert [s.processed for s in snapshots.series("job", "tests.jobs.noop")] == [2]


def test_racing_schedulers_never_take_twice(snapshots, redis_url):
    """Counters that never reset: a second taker would store a second row."""
    counters = Counters([EMAILS, DEFAULT_QUEUE], reset=False)
    start = threading.Barrier(4)

    def scheduler() -> None:
        own = taker(redis.Redis.from_url(redis_url), snapshots, counters)
        start.wait()
        own.take_scheduled(T0)

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert counters.takes == 1
    assert len(snapshots.series("job", "send_welcome")) == 1


def test_the_lock_frees_itself_for_the_next_interval(snapshots, redis_client):
    scheduled = taker(redis_client, snapshots, Counters([EMAILS], reset=False), interval_s=1)
    assert scheduled.take_scheduled(T0) is not None
    assert scheduled.take_scheduled(T0) is None
    ttl_ms = redis_client.pttl(Keys().snapshot_lock())
    assert 0 < ttl_ms <= 900  # most of the 1 s interval
    next_interval = T0 + timedelta(seconds=1)
    wait_until(
        lambda: scheduled.take_scheduled(next_interval),
        timeout_s=5,
        message="the next interval found the lock still held",
    )


def test_a_failed_take_frees_the_lock(snapshots, redis_client):
    with pytest.raises(redis.ConnectionError):
        taker(redis_client, snapshots, Broken()).take_scheduled(T0)
    taken = taker(redis_client, snapshots, Counters([EMAILS])).take_scheduled(T0)
    assert taken is not None and len(taken) == 1


def test_snapshot_times_align_across_schedulers():
    assert aligned(T0 + timedelta(seconds=1), 300) == T0 + timedelta(seconds=300)
    assert aligned(T0, 300) == T0
    assert aligned(T0 + timedelta(seconds=299), 60) == T0 + timedelta(seconds=300)


def test_the_scheduler_takes_snapshots_on_its_interval(settings, snapshots, redis_client):
    fast = settings.model_copy(update={"metrics": MetricsSettings(snapshot_interval=1)})
    tasks = tasks_for(fast, redis_client, snapshots, Counters([EMAILS], reset=False))
    scheduler = start_scheduler(Runtime(fast), tasks)
    try:
        assert {job.id for job in scheduler.get_jobs()} == {"snapshot", "prune"}
        wait_until(lambda: snapshots.names("job"), message="no scheduled snapshot was taken")
    finally:
        stop_scheduler(scheduler)
    assert not scheduler.running


def test_snapshot_rows_must_name_a_kind(snapshots):
    with pytest.raises(ValueError):
        take_snapshot(Counters([totals("host", "x")]), snapshots, T0, interval_s=1)
    assert snapshots.last_taken_at() is None


def test_skyline_snapshot_takes_one_by_hand(runtime, skyline, snapshots):
    for n in range(3):
        noop.options(queue="emails").dispatch(n)
    worked = skyline("work", "emails", "--stop-when-empty")
    assert worked.returncode == 0, worked.stderr
    done = skyline("snapshot", "--json")
    assert done.returncode == 0, done.stderr
    rows = {(row["kind"], row["name"]): row for row in json.loads(done.stdout)}
    assert set(rows) == {("job", "tests.jobs.noop"), ("queue", "emails")}
    assert [rows[key]["processed"] for key in sorted(rows)] == [3, 3]
    assert [s.pushed for s in snapshots.series("queue", "emails")] == [3]
    again = skyline("snapshot")
    assert again.returncode == 0, again.stderr
    assert again.stdout.strip() == "Snapshot taken: 0 jobs, 0 queues."


def test_migrate_adds_the_snapshot_table_to_a_0002_database(blank_database_url):
    engine = create_engine_for(blank_database_url)
    alembic(engine, "upgrade", "0002")
    assert "skyline_metric_snapshots" not in inspect(engine).get_table_names()
    migrate(engine)
    assert versions(engine) == [SCHEMA_REVISION]
    SnapshotRepository(engine).record([row("a", T0)])
    assert SnapshotRepository(engine).names("job") == ["a"]
    index = {ix["name"]: ix for ix in inspect(engine).get_indexes("skyline_metric_snapshots")}
    assert index["ix_skyline_metric_snapshots_series"]["column_names"] == [
        "kind",
        "name",
        "taken_at",
    ]
    alembic(engine, "downgrade", "0002")
    assert "skyline_metric_snapshots" not in inspect(engine).get_table_names()
    engine.dispose()
