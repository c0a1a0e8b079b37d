"""Long-wait alerts: a queue whose oldest ready job has waited past its threshold.

Any number of schedulers may check at once: the cool-down lives in Redis, so one of
them claims the alert and sends it to every channel, once per queue per cool-down.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.alert_channels import deliver
from core.cooldowns import Alerting
from core.queue import RedisQueue
from core.waits import QueueWait, measure_waits

LONG_WAIT = "long_wait"

log = logging.getLogger("skyline.alerts")


@dataclass(frozen=True)
class LongWait:
    connection: str
    queue: str
    wait_s: float
    threshold_s: float
    at: datetime
    env: str

    @property
    def kind(self) -> str:
        return LONG_WAIT

    def subject(self) -> str:
        return f"[Skyline {self.env}] Long wait on {self.connection}:{self.queue}"

    def summary(self) -> str:
        return (
            f"Skyline ({self.env}): jobs on {self.connection}:{self.queue} have waited "
            f"{self.wait_s:.0f} s, over the {self.threshold_s:g} s threshold."
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": LONG_WAIT,
            "env": self.env,
            "connection": self.connection,
            "queue": self.queue,
            "wait_s": round(self.wait_s, 3),
            "threshold_s": self.threshold_s,
            "at": self.at.isoformat(),
        }


class WaitAlerts:
    def __init__(self, queues: Callable[[str], RedisQueue], alerting: Alerting) -> None:
        self._queues = queues
        self._alerting = alerting

    def check(self, now: datetime) -> list[LongWait]:
        """The alerts this call sent; a queue in its cool-down is measured but not sent."""
        sent = []
        for wait, threshold_s in self.measure(now):
            if wait.oldest_wait_s <= threshold_s:
                continue
            alert = LongWait(
                wait.connection,
                wait.queue,
                wait.oldest_wait_s,
                threshold_s,
                now,
                self._alerting.env,
            )
            if self._fire(alert, _ms(now)):
                sent.append(alert)
        return sent

    def measure(self, now: datetime) -> list[tuple[QueueWait, float]]:
        """Every queue with a threshold, one round trip per connection."""
        by_connection: dict[str, dict[str, float]] = defaultdict(dict)
        for connection, queue, threshold_s in self._alerting.settings.thresholds():
            by_connection[connection][queue] = threshold_s
        measured = []
        for connection, thresholds in by_connection.items():
            queue = self._queues(connection)
            waits = measure_waits(queue, connection, list(thresholds), _ms(now))
            measured += [(wait, thresholds[wait.queue]) for wait in waits]
        return measured

    def _fire(self, alert: LongWait, now_ms: int) -> bool:
        key = self._alerting.keys.alert_cooldown(LONG_WAIT, alert.connection, alert.queue)
        if not self._alerting.cooldowns.claim(key, now_ms, self._alerting.settings.cooldown * 1000):
            return False
        log.warning("%s", alert.summary())
        if self._alerting.channels and not deliver(alert, self._alerting.channels):
            self._alerting.cooldowns.undo(
                key, now_ms
            )  # nothing went out: the next check tries again
            return False
        return True


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
