"""Prometheus text exposition of Skyline's figures, read fresh at every scrape.

Each call builds its own registry around one collector, so nothing is global and
two apps in one process never share figures. Rates and runtimes come from the
newest snapshot: the live counters reset at each snapshot, so they are no
Prometheus counters.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.control import ControlRepository, Heartbeat
from core.metrics import MetricsRepository
from core.runtime import Runtime
from core.snapshots import MetricKind, Snapshot, SnapshotRepository
from core.waits import measure_waits

__all__ = ["CONTENT_TYPE_LATEST", "QueueReading", "Readings", "read", "render", "render_metrics"]

QUEUE_STATES = ("ready", "delayed", "reserved")
# Prometheus sets a "job" label on every scraped series itself, so job names go in "job_name".
NAME_LABELS = {MetricKind.JOB: "job_name", MetricKind.QUEUE: "queue"}
SNAPSHOT_FIGURES = (
    ("throughput_per_minute", "Jobs processed per minute", lambda s: s.throughput),
    ("runtime_avg_seconds", "Average runtime", lambda s: s.runtime_avg_ms / 1000),
    ("runtime_max_seconds", "Longest runtime", lambda s: s.runtime_max_ms / 1000),
    ("wait_p50_seconds", "Median measured wait", lambda s: s.wait_p50_ms / 1000),
    ("wait_p95_seconds", "95th percentile of the measured wait", lambda s: s.wait_p95_ms / 1000),
    ("wait_max_seconds", "Longest measured wait", lambda s: s.wait_max_ms / 1000),
    ("interval_processed_jobs", "Jobs processed", lambda s: s.processed),
    ("interval_failed_jobs", "Jobs failed", lambda s: s.failed),
    ("interval_pushed_jobs", "Jobs pushed", lambda s: s.pushed),
)


@dataclass(frozen=True)
class QueueReading:
    connection: str
    queue: str
    sizes: dict[str, int]
    oldest_wait_s: float


@dataclass(frozen=True)
class Readings:
    queues: list[QueueReading]
    snapshots: list[Snapshot]  # the newest snapshot's rows
    supervisors: list[Heartbeat]


class SkylineCollector(Collector):
    def __init__(self, readings: Readings) -> None:
        self.readings = readings

    def collect(self) -> Iterator[Metric]:
        yield from queue_families(self.readings.queues)
        yield from snapshot_families(self.readings.snapshots)
        yield from supervisor_families(self.readings.supervisors)


def render(readings: Readings) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SkylineCollector(readings))
    return generate_latest(registry).decode()


def render_metrics(runtime: Runtime, now: datetime | None = None) -> str:
    """What ``/metrics`` answers (with ``CONTENT_TYPE_LATEST``); the caller has made sure
    of the SQL schema once, at start-up, rather than at every scrape."""
    return render(read(runtime, SnapshotRepository(runtime.engine), now or datetime.now(UTC)))


def queue_families(queues: list[QueueReading]) -> Iterator[Metric]:
    sizes = GaugeMetricFamily(
        "skyline_queue_jobs", "Jobs on a queue by state", labels=["connection", "queue", "state"]
    )
    waits = GaugeMetricFamily(
        "skyline_queue_oldest_wait_seconds",
        "How long the oldest ready job has waited since it became available",
        labels=["connection", "queue"],
    )
    for reading in queues:
        for state in QUEUE_STATES:
            labels = [reading.connection, reading.queue, state]
            sizes.add_metric(labels, reading.sizes.get(state, 0))
        waits.add_metric([reading.connection, reading.queue], reading.oldest_wait_s)
    yield sizes
    yield waits


def snapshot_families(snapshots: list[Snapshot]) -> Iterator[Metric]:
    for kind, label in NAME_LABELS.items():
        rows = [s for s in snapshots if s.kind == kind]
        per = label.replace("_", " ")
        for suffix, text, value in SNAPSHOT_FIGURES:
            help_text = f"{text}, per {per}, in the last snapshot"
            family = GaugeMetricFamily(f"skyline_{kind}_{suffix}", help_text, labels=[label])
            for row in rows:
                family.add_metric([row.name], value(row))
            yield family
    if snapshots:
        newest = max(snapshots, key=lambda s: s.taken_at)
        yield GaugeMetricFamily(
            "skyline_snapshot_timestamp_seconds",
            "When the last snapshot was taken",
            value=newest.taken_at.timestamp(),
        )
        yield GaugeMetricFamily(
            "skyline_snapshot_interval_seconds",
            "The period the last snapshot covers",
            value=newest.interval_s,
        )


def supervisor_families(supervisors: list[Heartbeat]) -> Iterator[Metric]:
    processes = GaugeMetricFamily(
        "skyline_supervisor_processes",
        "Worker processes per supervisor pool",
        labels=["supervisor", "pool"],
    )
    busy = GaugeMetricFamily(
        "skyline_supervisor_busy_processes",
        "Worker processes running a job, per supervisor pool",
        labels=["supervisor", "pool"],
    )
    paused = GaugeMetricFamily(
        "skyline_supervisor_paused", "1 while a supervisor is paused", labels=["supervisor"]
    )
    for beat in supervisors:
        queues = ",".join(beat.details.get("queues", []))
        for group, pool in beat.details.get("pools", {}).items():
            name = queues if group == "*" else group  # "*" is a balance-off pool of every queue
            processes.add_metric([beat.name, name], pool.get("processes", 0))
            busy.add_metric([beat.name, name], pool.get("busy", 0))
        paused.add_metric([beat.name], 1 if beat.status == "paused" else 0)
    yield processes
    yield busy
    yield paused


def read(runtime: Runtime, snapshots: SnapshotRepository, now: datetime) -> Readings:
    client, keys = runtime.queue().client, runtime.dispatcher.keys
    supervisors = ControlRepository(client, keys).alive("supervisor")
    newest = snapshots.latest(MetricKind.JOB) + snapshots.latest(MetricKind.QUEUE)
    watched = watched_queues(runtime, supervisors, MetricsRepository(client, keys).queues())
    readings = []
    for connection, names in watched.items():
        queue = runtime.queue(connection)
        waits = measure_waits(queue, connection, names, int(now.timestamp() * 1000))
        for wait in waits:
            sizes = queue.sizes(wait.queue)
            readings.append(QueueReading(connection, wait.queue, sizes, wait.oldest_wait_s))
    return Readings(readings, newest, supervisors)


def watched_queues(
    runtime: Runtime, supervisors: list[Heartbeat], measured: list[str]
) -> dict[str, list[str]]:
    """Queues that supervisors serve, that have a wait threshold, or that jobs were
    pushed to (the metrics count those on the default connection's Redis), by connection."""
    default = runtime.settings.default_connection
    watched: dict[str, set[str]] = {default: set(measured)}
    for beat in supervisors:
        connection = beat.details.get("options", {}).get("connection") or default
        watched.setdefault(connection, set()).update(beat.details.get("queues", []))
    for connection, queue, _ in runtime.settings.alerts.thresholds():
        watched.setdefault(connection, set()).add(queue)
    return {connection: sorted(names) for connection, names in watched.items() if names}
