"""What the scheduler runs: snapshots, retention and alert checks, each done once cluster-wide."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.alert_channels import configured_channels
from core.alerts import LongWait, WaitAlerts
from core.cooldowns import Alerting, Cooldowns
from core.failure_alerts import FailedJobs, FailureAlerts
from core.metrics import MetricsRepository
from core.runtime import Runtime
from core.settings import Settings
from core.snapshot_taker import SnapshotTaker
from core.snapshots import Snapshot, SnapshotRepository


@dataclass(frozen=True)
class ScheduledTasks:
    settings: Settings
    taker: SnapshotTaker
    alerts: WaitAlerts
    failures: FailureAlerts | None = None

    @classmethod
    def from_runtime(cls, runtime: Runtime) -> ScheduledTasks:
        runtime.ensure_schema()
        client, keys, settings = runtime.queue().client, runtime.dispatcher.keys, runtime.settings
        channels, cooldowns = configured_channels(settings.alerts), Cooldowns(client)
        alerting = Alerting(cooldowns, keys, settings.alerts, channels, settings.env)
        failures = None
        if settings.alerts.failed_jobs:
            failures = FailureAlerts(runtime.failed_store, alerting)
        snapshots = SnapshotRepository(runtime.engine)
        interval_s = settings.metrics.snapshot_interval
        taker = SnapshotTaker(client, keys, MetricsRepository(client, keys), snapshots, interval_s)
        return cls(
            settings=settings,
            taker=taker,
            alerts=WaitAlerts(runtime.queue, alerting),
            failures=failures,
        )

    def snapshot(self, now: datetime | None = None) -> list[Snapshot] | None:
        return self.taker.take_scheduled(_now(now))

    def prune(self, now: datetime | None = None) -> int:
        """Needs no lock: a second scheduler's prune finds nothing left to delete."""
        retention = timedelta(days=self.settings.metrics.retention_days)
        return self.taker.snapshots.prune(before=_now(now) - retention)

    def check_alerts(self, now: datetime | None = None) -> list[LongWait | FailedJobs]:
        now = _now(now)
        sent: list[LongWait | FailedJobs] = list(self.alerts.check(now))
        if self.failures is not None:
            sent += self.failures.check(now)
        return sent


def _now(now: datetime | None) -> datetime:
    return now or datetime.now(UTC)
