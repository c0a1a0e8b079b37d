"""Live figures for the dashboard's overview, derived from the metrics and the queues."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from core.metric_tally import MINUTE_MS
from core.metrics import WAIT_BUCKETS_MS, MetricsRepository, MetricTotals
from core.queue import RedisQueue

HOUR_MINUTES = 60
WEEK_HOURS = 7 * 24
NO_WAITS = dict.fromkeys(WAIT_BUCKETS_MS, 0)


@dataclass(frozen=True)
class QueueFigures:
    name: str
    ready: int
    oldest_wait_ms: float  # how long the oldest ready job has waited so far
    wait_p50_ms: float  # measured at reservation, since the last snapshot
    wait_p95_ms: float
    runtime_ms_average: float  # since the last snapshot
    jobs_past_hour: int

    @property
    def wait_ms(self) -> float:
        """The longest wait known now: the oldest job still waiting, or the measured p95."""
        return max(self.oldest_wait_ms, self.wait_p95_ms)


@dataclass(frozen=True)
class LiveFigures:
    jobs_per_minute: float
    jobs_past_hour: int
    failed_past_7_days: int
    queues: list[QueueFigures]
    max_wait_queue: str | None
    max_runtime_queue: str | None
    max_throughput_queue: str | None


def live_figures(
    queue: RedisQueue, metrics: MetricsRepository, now: int, queues: Iterable[str] = ()
) -> LiveFigures:
    """``queues`` adds queues that nothing has been pushed to yet (those pushed are known)."""
    names = sorted(set(metrics.queues()).union(queues))
    minutes = metrics.past_minutes(now, HOUR_MINUTES)
    totals = {t.name: t for t in metrics.interval() if t.kind == "queue"}
    figures = []
    for name, (ready, head) in zip(names, queue.ready_heads(names), strict=True):
        interval = totals.get(name) or MetricTotals("queue", name, 0, 0, 0, 0.0, 0.0, NO_WAITS)
        figures.append(
            QueueFigures(
                name=name,
                ready=ready,
                oldest_wait_ms=_oldest_wait_ms(head, now),
                wait_p50_ms=interval.wait_percentile(50),
                wait_p95_ms=interval.wait_percentile(95),
                runtime_ms_average=_average(interval.runtime_ms_total, interval.processed),
                jobs_past_hour=sum(minute.get(name, 0) for minute in minutes),
            )
        )
    return LiveFigures(
        jobs_per_minute=_per_minute(minutes, now),
        jobs_past_hour=sum(sum(minute.values()) for minute in minutes),
        failed_past_7_days=metrics.failed_past(now, WEEK_HOURS),
        queues=figures,
        max_wait_queue=_busiest(figures, "wait_ms"),
        max_runtime_queue=_busiest(figures, "runtime_ms_average"),
        max_throughput_queue=_busiest(figures, "jobs_past_hour"),
    )


def _per_minute(minutes: list[dict[str, int]], now: int) -> float:
    """Jobs in the sixty seconds before ``now``: this minute so far, and the part of the
    previous minute still inside the window (assumed spread evenly over it)."""
    current, previous = (sum(minute.values()) for minute in minutes[:2])
    return current + previous * (1 - (now % MINUTE_MS) / MINUTE_MS)


def _average(total: float, count: int) -> float:
    return total / count if count else 0.0


def _busiest(figures: list[QueueFigures], measure: str) -> str | None:
    top = max(figures, key=lambda f: getattr(f, measure), default=None)
    return top.name if top is not None and getattr(top, measure) > 0 else None


def _oldest_wait_ms(head: bytes | None, now: int) -> float:
    """How long the oldest ready job has waited; 0 when there is none or it does not say."""
    try:
        available_at = json.loads(head).get("available_at") if head else None
    except (ValueError, AttributeError):
        return 0.0
    if not isinstance(available_at, int) or available_at <= 0:
        return 0.0
    return float(max(now - available_at, 0))
