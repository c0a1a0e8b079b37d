"""Metrics recording: counters per job name and per queue since the last snapshot.

Every interval counter lives in one hash, in a field that names the counter, the queue
and the job, so one MULTI reads and resets them all: an increment lands before it (and
is read) or after it (and waits for the next snapshot), never both or neither. Workers
add their tallies per (queue, job) pair; the totals per job and per queue are summed
when read. Small per-minute and per-hour keys with TTLs feed the live figures.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field

import redis
from redis.client import Pipeline

from core.keys import Keys
from core.metric_tally import HOUR_MS, MINUTE_MS, Tally
from core.pipelines import call, register

WAIT_BUCKETS_MS: tuple[float, ...] = (
    *(10.0, 25.0, 50.0, 100.0, 250.0, 500.0),
    *(1_000.0, 2_500.0, 5_000.0, 10_000.0, 30_000.0),
    *(60_000.0, 120_000.0, 300_000.0, 600_000.0, 1_800_000.0, 3_600_000.0),
    math.inf,
)  # upper bounds, roughly log-spaced from 10 ms to an hour
SEP = "\x1f"  # between counter, queue and job in a field name; in neither name in practice
MINUTE_TTL_S = 62 * 60  # a minute outlives the hour of minutes that the live figures sum
HOUR_TTL_S = (7 * 24 + 1) * 3600


def wait_bucket(wait_ms: float) -> int:
    """Index of the first bucket whose upper bound holds ``wait_ms``."""
    return bisect_left(WAIT_BUCKETS_MS, wait_ms)


@dataclass(frozen=True)
class MetricTotals:
    """One job name or one queue, since the last snapshot."""

    kind: str  # "job" | "queue"
    name: str
    processed: int  # attempts finished: completed, released or failed
    failed: int  # jobs that failed for good
    pushed: int
    runtime_ms_total: float
    runtime_ms_max: float
    wait_buckets: dict[float, int]  # bucket upper bound in ms (math.inf last) -> count

    def wait_percentile(self, p: float) -> float:
        """The ``p``-th percentile (0-100) of the measured wait, interpolated in its bucket
        the way Prometheus does; a wait in the last bucket reads as its lower bound."""
        if not 0 <= p <= 100:
            raise ValueError(f"a percentile is between 0 and 100, not {p}")
        total = sum(self.wait_buckets.values())
        rank = p / 100 * total
        seen, lower = 0, 0.0
        for bound, count in sorted(self.wait_buckets.items()):
            if count and seen + count >= rank:
                if math.isinf(bound):
                    return lower
                return lower + (bound - lower) * (rank - seen) / count
            seen, lower = seen + count, bound
        return 0.0


@dataclass
class _Sums:
    counts: dict[str, int] = field(default_factory=dict)
    runtime_max_us: int = 0
    waits: list[int] = field(default_factory=lambda: [0] * len(WAIT_BUCKETS_MS))

    def add(self, counter: str, value: int) -> None:
        if counter == "runtime_max_us":
            self.runtime_max_us = max(self.runtime_max_us, value)
        elif counter.startswith("wait_"):
            self.waits[int(counter[5:])] += value
        else:
            self.counts[counter] = self.counts.get(counter, 0) + value

    def totals(self, kind: str, name: str) -> MetricTotals:
        c = self.counts
        return MetricTotals(
            kind=kind,
            name=name,
            processed=c.get("processed", 0),
            failed=c.get("failed", 0),
            pushed=c.get("pushed", 0),
            runtime_ms_total=c.get("runtime_us", 0) / 1000,
            runtime_ms_max=self.runtime_max_us / 1000,
            wait_buckets=dict(zip(WAIT_BUCKETS_MS, self.waits, strict=True)),
        )


def _totals(fields: Mapping[bytes, bytes]) -> list[MetricTotals]:
    sums: dict[tuple[str, str], _Sums] = {}
    for name, value in fields.items():
        counter, queue, job = name.decode().split(SEP, 2)
        for owner in (("job", job), ("queue", queue)):
            sums.setdefault(owner, _Sums()).add(counter, int(value))
    return [s.totals(kind, name) for (kind, name), s in sorted(sums.items())]


class MetricsRepository:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._interval = keys.metrics_interval()
        self._add = register(client, "metrics_add")

    def pushed(self, pipe: Pipeline, counts: Mapping[tuple[str, str], int]) -> None:
        """``counts``: jobs pushed per (queue, job name)."""
        if not counts:
            return
        for (queue, job), count in counts.items():
            pipe.hincrby(self._interval, f"pushed{SEP}{queue}{SEP}{job}", count)
        pipe.sadd(self.keys.measured_queues(), *{queue for queue, _ in counts})

    def add(self, pipe: Pipeline, tally: Tally) -> None:
        increments: list[str | int] = []
        maxima: list[str | int] = []
        for (queue, job), t in tally.pairs.items():
            pair = f"{SEP}{queue}{SEP}{job}"
            increments += [f"processed{pair}", t.processed, f"runtime_us{pair}", t.runtime_us]
            if t.failed:
                increments += [f"failed{pair}", t.failed]
            for bucket, count in t.waits.items():
                increments += [f"wait_{bucket}{pair}", count]
            maxima += [f"runtime_max_us{pair}", t.runtime_max_us]
        keys, counters = [self._interval], []
        for (minute, queue), count in tally.minutes.items():
            keys.append(self.keys.metrics_minute(minute))
            counters += [queue, count, MINUTE_TTL_S]
        for hour, count in tally.failed_hours.items():
            keys.append(self.keys.metrics_failed_hour(hour))
            counters += ["", count, HOUR_TTL_S]
        args = [len(increments) // 2, len(maxima) // 2, *increments, *maxima, *counters]
        call(pipe, self._add, keys, args)

    def take_interval(self) -> list[MetricTotals]:
        """Read and reset the interval counters in one transaction."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hgetall(self._interval).delete(self._interval)
        fields, _ = pipe.execute()
        return _totals(fields)

    def interval(self) -> list[MetricTotals]:
        """The interval so far, left as it is."""
        return _totals(self.client.hgetall(self._interval))

    def past_minutes(self, now: int, minutes: int) -> list[dict[str, int]]:
        """Attempts finished per queue in each minute, newest (the current one) first."""
        pipe = self.client.pipeline(transaction=False)
        for back in range(minutes):
            pipe.hgetall(self.keys.metrics_minute(now // MINUTE_MS - back))
        return [{q.decode(): int(n) for q, n in fields.items()} for fields in pipe.execute()]

    def failed_past(self, now: int, hours: int) -> int:
        keys = [self.keys.metrics_failed_hour(now // HOUR_MS - back) for back in range(hours)]
        return sum(int(count) for count in self.client.mget(keys) if count)

    def queues(self) -> list[str]:
        return sorted(q.decode() for q in self.client.smembers(self.keys.measured_queues()))
