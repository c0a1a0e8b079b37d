"""The Prometheus exposition parses with prometheus_client's own parser and says what happened."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.control import ControlRepository
from core.prometheus import CONTENT_TYPE_LATEST, Readings, render, render_metrics
from core.settings import AlertSettings
from core.snapshots import Snapshot, SnapshotRepository
from tests.jobs import noop

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def snapshot(kind: str, name: str, taken_at: datetime, **figures) -> Snapshot:
    values = dict(
        interval_s=300.0,
        throughput=12.0,
        runtime_avg_ms=250.0,
        runtime_max_ms=1500.0,
        wait_p50_ms=20.0,
        wait_p95_ms=900.0,
        wait_max_ms=1000.0,
        processed=60,
        failed=3,
        pushed=64,
    )
    return Snapshot(kind, name, taken_at, **(values | figures))


def supervisor_details(queues: list[str], pools: dict[str, dict[str, int]]) -> dict:
    processes = sum(p["processes"] for p in pools.values())
    options = {"connection": "redis", "queues": queues}
    return {
        "queues": queues,
        "balance": "auto",
        "pools": pools,
        "processes": processes,
        "options": options,
    }


@pytest.fixture
def scraped(runtime, engine):
    """A system with jobs waiting, two supervisors and two snapshots; its /metrics text."""
    queue = runtime.queue()
    noop.options(queue="default").dispatch(1)
    noop.options(queue="default").dispatch(2)
    noop.options(queue="default", delay=60).dispatch(3)
    [(_, head)] = queue.ready_heads(["default"])
    available = json.loads(head)["available_at"]
    control = ControlRepository(queue.client, runtime.dispatcher.keys)
    pools = {"default": {"processes": 3, "busy": 2}, "emails": {"processes": 1, "busy": 0}}
    main = supervisor_details(["default", "emails"], pools)
    slow = supervisor_details(["reports", "low"], {"*": {"processes": 2, "busy": 0}})
    control.beat("supervisor", "web-1:main", "running", main)
    control.beat("supervisor", "web-1:slow", "paused", slow)
    repository = SnapshotRepository(engine)
    old, new = T0 - timedelta(minutes=5), T0
    repository.record(
        [
            snapshot("job", "tests.jobs.noop", old, processed=1),
            snapshot("job", "tests.jobs.noop", new),
            snapshot("job", 'odd "name"\\with\nbreaks', new, processed=1, failed=0),
            snapshot("queue", "default", new, throughput=4.5),
        ]
    )
    now = datetime.fromtimestamp((available + 7_500) / 1000, UTC)
    return render_metrics(runtime, now)


def test_queue_sizes_and_wait(scraped):
    found = samples(scraped)
    base = (("connection", "redis"), ("queue", "default"))
    for state, count in (("delayed", 1), ("ready", 2), ("reserved", 0)):
        key = ("skyline_queue_jobs", tuple(sorted((*base, ("state", state)))))
        assert found[key] == count
    assert found[("skyline_queue_oldest_wait_seconds", base)] == pytest.approx(7.5)
    emails = (("connection", "redis"), ("queue", "emails"))
    assert found[("skyline_queue_oldest_wait_seconds", emails)] == 0
    low = (("connection", "redis"), ("queue", "low"))
    assert ("skyline_queue_oldest_wait_seconds", low) in found


def test_figures_of_the_newest_snapshot(scraped):
    found = samples(scraped)
    noop_job = (("job_name", "tests.jobs.noop"),)
    assert found[("skyline_job_throughput_per_minute", noop_job)] == 12.0
    assert found[("skyline_job_runtime_avg_seconds", noop_job)] == 0.25
    assert found[("skyline_job_runtime_max_seconds", noop_job)] == 1.5
    assert found[("skyline_job_wait_p50_seconds", noop_job)] == 0.02
    assert found[("skyline_job_wait_p95_seconds", noop_job)] == 0.9
    assert found[("skyline_job_wait_max_seconds", noop_job)] == 1.0
    assert found[("skyline_job_interval_processed_jobs", noop_job)] == 60
    assert found[("skyline_job_interval_failed_jobs", noop_job)] == 3
    assert found[("skyline_job_interval_pushed_jobs", noop_job)] == 64
    odd = (("job_name", 'odd "name"\\with\nbreaks'),)
    assert found[("skyline_job_interval_processed_jobs", odd)] == 1
    assert found[("skyline_queue_throughput_per_minute", (("queue", "default"),))] == 4.5
    assert found[("skyline_snapshot_timestamp_seconds", ())] == T0.timestamp()
    assert found[("skyline_snapshot_interval_seconds", ())] == 300


def test_process_counts_from_supervisor_heartbeats(scraped):
    found = samples(scraped)

    def pool(supervisor: str, name: str) -> tuple:
        return (("pool", name), ("supervisor", supervisor))

    assert found[("skyline_supervisor_processes", pool("web-1:main", "default"))] == 3
    assert found[("skyline_supervisor_busy_processes", pool("web-1:main", "default"))] == 2
    assert found[("skyline_supervisor_processes", pool("web-1:main", "emails"))] == 1
    assert found[("skyline_supervisor_processes", pool("web-1:slow", "reports,low"))] == 2
    assert found[("skyline_supervisor_paused", (("supervisor", "web-1:slow"),))] == 1
    assert found[("skyline_supervisor_paused", (("supervisor", "web-1:main"),))] == 0


def test_every_family_is_a_typed_gauge_with_help(scraped):
    families = list(text_string_to_metric_families(scraped))
    assert len({f.name for f in families}) == len(families)
    assert all(f.type == "gauge" and f.documentation for f in families)
    assert all(f.name.startswith("skyline_") for f in families)
    assert CONTENT_TYPE_LATEST.startswith("text/plain; version=")


def test_queues_with_a_wait_threshold_are_watched(runtime, settings):
    alerts = AlertSettings(waits={"redis:billing": 30})
    runtime.settings = settings.model_copy(update={"alerts": alerts})
    noop.options(queue="billing").dispatch(1)
    found = samples(render_metrics(runtime))
    labels = (("connection", "redis"), ("queue", "billing"), ("state", "ready"))
    assert found[("skyline_queue_jobs", labels)] == 1


def test_an_idle_system_renders_empty_families(runtime):
    families = list(text_string_to_metric_families(render_metrics(runtime)))
    assert families and all(not family.samples for family in families)


def test_each_render_has_its_own_registry():
    """Two renders of different readings never mix: there is no global registry."""
    first = render(Readings([], [snapshot("job", "a", T0)], []))
    second = render(Readings([], [snapshot("job", "b", T0)], []))
    assert 'job_name="a"' in first and 'job_name="a"' not in second
