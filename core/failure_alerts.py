"""Failed-job alerts, read from the durable failed store rather than from worker events.

JobFailed fires inside worker processes, mid-job; sending mail from there would slow
the worker and repeat per process. The scheduler instead asks SQL which queues had
failures, and sends one alert per queue per cool-down counting the failures since
that queue's previous alert (at most one cool-down back the first time).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from core.alert_channels import deliver
from core.cooldowns import Alerting
from core.failed import FailedJobRecord, FailedJobRepository

JOB_FAILED = "job_failed"
log = logging.getLogger("skyline.alerts")
MESSAGE_CHARS = 500
# When each queue last alerted is kept this long, so the next alert counts from it.
KEEP_LAST_ALERT = timedelta(days=7)


@dataclass(frozen=True)
class FailedJobs:
    connection: str
    queue: str
    count: int
    since: datetime
    latest: FailedJobRecord
    at: datetime
    env: str

    @property
    def kind(self) -> str:
        return JOB_FAILED

    def subject(self) -> str:
        return f"[Skyline {self.env}] {self._jobs()} failed on {self.connection}:{self.queue}"

    def summary(self) -> str:
        latest = self.latest
        return (
            f"Skyline ({self.env}): {self._jobs()} failed on {self.connection}:{self.queue} "
            f"since {self.since:%Y-%m-%d %H:%M:%S} UTC; the latest, {latest.job_name}, raised "
            f"{latest.exception_class}: {latest.message[:MESSAGE_CHARS]}"
        )

    def as_dict(self) -> dict[str, Any]:
        latest = self.latest
        return {
            "event": JOB_FAILED,
            "env": self.env,
            "connection": self.connection,
            "queue": self.queue,
            "count": self.count,
            "since": self.since.isoformat(),
            "at": self.at.isoformat(),
            "latest": {
                "id": latest.uuid,
                "job_name": latest.job_name,
                "exception_class": latest.exception_class,
                "message": latest.message[:MESSAGE_CHARS],
                "failed_at": latest.failed_at.isoformat(),
            },
        }

    def _jobs(self) -> str:
        return "1 job" if self.count == 1 else f"{self.count} jobs"


class FailureAlerts:
    def __init__(self, failed: FailedJobRepository, alerting: Alerting) -> None:
        self._failed = failed
        self._alerting = alerting

    def check(self, now: datetime) -> list[FailedJobs]:
        cooldown = timedelta(seconds=self._alerting.settings.cooldown)
        # A queue in its cool-down is not looked at; a failure just after an alert is
        # counted by the first check after the cool-down, at most one check interval later.
        look_back = cooldown + 2 * timedelta(seconds=self._alerting.settings.check_interval)
        sent = []
        for candidate in self._failed.failures_by_queue(now - look_back, now):
            alert = self._claim(candidate.connection, candidate.queue, now, cooldown)
            if alert is not None:
                sent.append(alert)
        return sent

    def _claim(
        self, connection: str, queue: str, now: datetime, cooldown: timedelta
    ) -> FailedJobs | None:
        key = self._alerting.keys.alert_cooldown(JOB_FAILED, connection, queue)
        previous = self._alerting.cooldowns.last(key)
        since = _moment(previous, now) if previous is not None else now - cooldown
        found = self._failed.failures_by_queue(since, now, connection=connection, queue=queue)
        if not found:
            return None  # every failure came before the queue's previous alert
        now_ms, keep_ms = _ms(now), int(KEEP_LAST_ALERT.total_seconds() * 1000)
        if not self._alerting.cooldowns.claim(
            key, now_ms, int(cooldown.total_seconds() * 1000), keep_ms
        ):
            return None
        [latest] = self._failed.list(queue=queue, since=since, limit=1)
        alert = FailedJobs(
            connection, queue, found[0].count, since, latest, now, self._alerting.env
        )
        log.warning("%s", alert.subject())
        if self._alerting.channels and not deliver(alert, self._alerting.channels):
            self._alerting.cooldowns.undo(key, now_ms, previous, keep_ms)
            return None
        return alert


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _moment(ms: int, like: datetime) -> datetime:
    return datetime.fromtimestamp(ms / 1000, like.tzinfo)
