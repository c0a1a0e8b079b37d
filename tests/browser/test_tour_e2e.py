"""The README's tour: a realistic day on one host, then a full-page screenshot of every page.

A real master runs jobs of several names on the "default" and "emails" queues (some fail,
one is retried from the failed list), a tag is monitored, batches run, and the last 24 hours
of metric snapshots are recorded so that the charts have a day's shape. Each screenshot is
taken once the page shows what it is meant to show.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from core.batches import batch
from core.job_record import JobIndex, JobStatus
from core.runtime import Runtime
from core.snapshots import MetricKind, Snapshot, SnapshotRepository
from dashboard.context import Dashboard
from tests import jobs
from tests.browser.conftest import MASTER, cell, figure
from tests.conftest import wait_until

pytestmark = pytest.mark.browser

DAY = timedelta(hours=24)
MONITORED = "customer:42"
FAILING = "tests.jobs.fails_unless_retried"
SEED = 20_251_123


@dataclass(frozen=True)
class Load:
    """One job name's day: jobs per minute at the daily mean, runtime, share that fails."""

    name: str
    queue: str
    per_minute: float
    runtime_ms: float
    failing: float = 0.0


LOADS = (
    Load("tests.jobs.noop", "default", 90, 4),
    Load("tests.jobs.raises", "default", 3, 9, failing=1.0),
    Load(FAILING, "default", 6, 140, failing=0.04),
    Load("tests.jobs.TaggedGreeting", "emails", 35, 28),
    Load("tests.jobs.slow", "emails", 8, 620, failing=0.01),
)


def busy(at: datetime) -> float:
    """How busy the day is at ``at``: quiet at night, busiest mid-afternoon (UTC)."""
    hours = at.hour + at.minute / 60
    return 1.1 + math.sin((hours - 9) / 24 * 2 * math.pi)


def job_snapshot(load: Load, at: datetime, interval_s: int, rng: random.Random) -> Snapshot:
    processed = round(load.per_minute * busy(at) * rng.uniform(0.8, 1.2) * interval_s / 60)
    runtime_ms = load.runtime_ms * (0.9 + 0.15 * busy(at)) * rng.uniform(0.9, 1.1)
    failed = min(processed, round(processed * load.failing * rng.uniform(0.5, 1.5)))
    return Snapshot(
        kind=MetricKind.JOB.value,
        name=load.name,
        taken_at=at,
        interval_s=interval_s,
        throughput=processed * 60 / interval_s,
        runtime_avg_ms=runtime_ms,
        runtime_max_ms=runtime_ms * rng.uniform(2, 6),
        wait_p50_ms=0.0,
        wait_p95_ms=0.0,
        wait_max_ms=0.0,
        processed=processed,
        failed=processed if load.failing == 1 else failed,
        pushed=processed + rng.randint(0, 3),
    )


def queue_snapshot(queue: str, rows: list[Snapshot], rng: random.Random) -> Snapshot:
    """A queue's row of one snapshot: the sums of its jobs' rows, and a wait that grows
    with the load."""
    processed = sum(row.processed for row in rows)
    runtime_total = sum(row.runtime_avg_ms * row.processed for row in rows)
    at, interval_s = rows[0].taken_at, rows[0].interval_s
    wait_ms = 40 * busy(at) ** 2 * rng.uniform(0.7, 1.3)
    return Snapshot(
        kind=MetricKind.QUEUE.value,
        name=queue,
        taken_at=at,
        interval_s=interval_s,
        throughput=processed * 60 / interval_s,
        runtime_avg_ms=runtime_total / processed if processed else 0.0,
        runtime_max_ms=max(row.runtime_max_ms for row in rows),
        wait_p50_ms=wait_ms,
        wait_p95_ms=wait_ms * rng.uniform(3, 5),
        wait_max_ms=wait_ms * rng.uniform(6, 12),
        processed=processed,
        failed=sum(row.failed for row in rows),
        pushed=sum(row.pushed for row in rows),
    )


def record_a_day_of_snapshots(snapshots: SnapshotRepository, interval_s: int) -> None:
    """What the scheduler would have recorded every interval of the past 24 hours."""
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    newest = now - timedelta(seconds=now.timestamp() % interval_s)
    count = int(DAY.total_seconds() // interval_s)
    rows: list[Snapshot] = []
    for i in range(count):
        at = newest - timedelta(seconds=interval_s * (count - 1 - i))
        of_jobs = [job_snapshot(load, at, interval_s, rng) for load in LOADS]
        rows += of_jobs
        for queue in ("default", "emails"):
            mine = [row for row, load in zip(of_jobs, LOADS, strict=True) if load.queue == queue]
            rows.append(queue_snapshot(queue, mine, rng))
    snapshots.record(rows)


@dataclass(frozen=True)
class Workload:
    failures: int  # jobs that end in the failed store
    waiting: int  # jobs that stay pending: delayed, or on a queue nobody serves
    batches: list[str]  # ids of the batches that finish
    first_failure: str  # the id of a job that failed after several attempts


def dispatch_a_workload(runtime: Runtime) -> Workload:
    """A mix of jobs on "default" and "emails" (the master's queues) and "greetings" (no
    worker serves it, so its jobs wait), with failures and batches."""
    customers = [jobs.noop.options(tags=[f"customer:{40 + n % 4}"]).prepare(n) for n in range(24)]
    greetings = [jobs.TaggedGreeting(name).options(queue="emails") for name in ("ada", "grace")]
    [first_failure, *_] = runtime.dispatcher.dispatch(
        [
            jobs.always_fails.prepare(7),
            *customers,
            *greetings,
            *(jobs.slow.options(queue="emails").prepare(n, 0.05) for n in range(6)),
            *(jobs.raises.prepare(n) for n in (3, 11)),
            jobs.FailingClassJob(5).options(queue="emails"),
            *(jobs.fails_unless_retried.prepare(n) for n in (1042, 1043)),
            *(jobs.noop.options(queue="emails", delay=900).prepare(n) for n in range(3)),
            jobs.Greeting("Linus").prepare(),
        ]
    )
    imports = [jobs.slow.prepare(n, 0.05) for n in range(10)] + [jobs.raises.prepare(100)]
    finished = [
        batch(imports).name("nightly import").allow_failures().dispatch().id,
        batch([jobs.TaggedGreeting(f"user{n}").options(queue="emails") for n in range(8)])
        .name("welcome mails")
        .dispatch()
        .id,
    ]
    waiting = [jobs.Greeting(f"team {n}").prepare() for n in range(3)]
    batch(waiting).name("team greetings").dispatch()
    return Workload(failures=7, waiting=7, batches=finished, first_failure=first_failure)


def settled(dash: Dashboard, workload: Workload) -> bool:
    """Every job the master can run has run."""
    counts = dash.records.counts()
    return (
        dash.failed.count() == workload.failures
        and counts[JobIndex.PENDING] == workload.waiting
        and all(dash.batches.get(batch_id).finished for batch_id in workload.batches)
    )


def monitor(page: Page, tag: str) -> None:
    page.goto("/monitoring")
    form = page.get_by_role("region", name="Monitor a tag")
    form.get_by_label("Tag").fill(tag)
    form.get_by_role("button", name="Monitor").click()
    expect(page.get_by_role("status")).to_contain_text(f"Monitoring {tag}")


def act_as_an_operator(page: Page, dash: Dashboard) -> None:
    """Retry a failed job (which then completes), pause and continue the master: changes
    for the audit log."""
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"/jobs/failed?job={FAILING}")
    row = page.get_by_role("row").filter(has_text="order 1042")
    row.get_by_role("button", name="Retry", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Retried 1 failed job.")
    [retried] = dash.failed.list(job_name=FAILING, search="order 1042")

    def completed() -> bool:
        record = dash.records.get(retried.retried_by or "")
        return record is not None and record.status is JobStatus.COMPLETED

    wait_until(completed, timeout_s=30, message="the retried job did not complete")

    page.goto("/")
    masters = page.get_by_role("region", name="Masters", exact=True)
    masters.get_by_role("button", name="Pause").click()
    expect(cell(page, "Masters", MASTER, 2)).to_have_text("paused")
    masters.get_by_role("button", name="Continue").click()
    expect(cell(page, "Masters", MASTER, 2)).to_have_text("running")


@pytest.mark.slow
def test_the_tour_of_every_page_with_a_day_of_data(
    page: Page, sign_in, master, runtime, live_server, screenshot: Callable[[str], Path]
):
    dash: Dashboard = live_server.app.state.dashboard
    master()
    sign_in("admin")
    monitor(page, MONITORED)  # before the jobs that carry the tag are pushed
    workload = dispatch_a_workload(runtime)
    record_a_day_of_snapshots(dash.snapshots, dash.settings.metrics.snapshot_interval)
    wait_until(lambda: settled(dash, workload), timeout_s=60, message="the workload did not run")
    act_as_an_operator(page, dash)

    tour = [  # (screenshot, page, a text the page shows once it has what it is meant to)
        ("overview-busy", "/", "greetings"),
        ("jobs-pending", "/jobs/pending", "tests.jobs.Greeting"),
        ("jobs-completed", "/jobs/completed?per_page=20", "TaggedGreeting"),
        ("jobs-failed", "/jobs/failed", "ValueError: always fails 7"),
        ("job-detail", f"/job/{workload.first_failure}", "Traceback"),
        ("batches", "/batches", "team greetings"),
        ("batch-detail", f"/batches/{workload.batches[0]}", "RuntimeError: raises 100"),
        ("metrics-jobs", "/metrics/jobs", "tests.jobs.slow"),
        ("metric-detail", "/metrics/jobs/tests.jobs.noop?range=24h", "Average runtime"),
        ("metrics-queues", "/metrics/queues", "Wait p95"),
        ("monitoring", "/monitoring", MONITORED),
        ("audit-log", "/audit", "failed.retry"),
    ]
    for name, path, text in tour:
        page.goto(path)
        expect(page.get_by_role("main").get_by_text(text).first).to_be_visible()
        screenshot(name)

    page.emulate_media(color_scheme="dark")
    page.goto("/")
    expect(figure(page, "Failed past 7 days")).to_have_text("7")
    screenshot("overview-dark")
