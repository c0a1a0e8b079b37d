"""The APScheduler that runs the scheduled tasks inside a long-lived process (the master
supervisor, or the dashboard run alone); every host may run one."""

from __future__ import annotations

import math
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from core.claude.scheduling import schedule_claude
from core.runtime import Runtime
from core.scheduled import ScheduledTasks

PRUNE_INTERVAL_S = 3600
JOB_DEFAULTS = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}


def start_scheduler(
    runtime: Runtime, tasks: ScheduledTasks | None = None, now: datetime | None = None
) -> BackgroundScheduler:
    tasks = tasks or ScheduledTasks.from_runtime(runtime)
    now = now or datetime.now(UTC)
    settings = runtime.settings
    interval_s = settings.metrics.snapshot_interval
    scheduler = BackgroundScheduler(timezone=UTC, job_defaults=JOB_DEFAULTS)
    trigger = IntervalTrigger(seconds=interval_s, start_date=aligned(now, interval_s))
    scheduler.add_job(tasks.snapshot, trigger, id="snapshot", name="metric snapshot")
    prune = IntervalTrigger(seconds=PRUNE_INTERVAL_S)
    scheduler.add_job(tasks.prune, prune, id="prune", name="snapshot retention", next_run_time=now)
    if settings.alerts.waits or settings.alerts.failed_jobs:
        check = IntervalTrigger(seconds=settings.alerts.check_interval)
        scheduler.add_job(tasks.check_alerts, check, id="alerts", name="alerts", next_run_time=now)
    schedule_claude(scheduler, runtime, now)  # where the app runs the Claude workload
    scheduler.start()
    return scheduler


def stop_scheduler(scheduler: BackgroundScheduler, wait: bool = True) -> None:
    """``wait`` lets a snapshot being written finish."""
    if scheduler.running:
        scheduler.shutdown(wait=wait)


def aligned(now: datetime, interval_s: int) -> datetime:
    """The next multiple of the interval since the epoch: every scheduler of the cluster
    fires at the same moments, and the first to get there takes the snapshot."""
    slots = math.ceil(now.timestamp() / interval_s)
    return datetime.fromtimestamp(slots * interval_s, UTC)
