"""Taking snapshots: by hand at any moment, or on schedule by one scheduler per interval."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import redis

from core.keys import Keys
from core.locks import Locks
from core.snapshots import IntervalCounters, Snapshot, SnapshotRepository, take_snapshot

# The taker holds the lock for most of an interval, so a scheduler whose clock or start
# lags a little still finds it held; it expires in time for the next interval.
LOCK_SHARE = 0.9
MARK_TTL = timedelta(days=7)


@dataclass(frozen=True)
class SnapshotTaker:
    client: redis.Redis
    keys: Keys
    metrics: IntervalCounters
    snapshots: SnapshotRepository
    interval_s: float

    def take(self, now: datetime) -> list[Snapshot]:
        previous = self._mark(now)
        return take_snapshot(
            self.metrics, self.snapshots, now, interval_s=self.interval_s, previous=previous
        )

    def take_scheduled(self, now: datetime) -> list[Snapshot] | None:
        """None when another scheduler has taken this interval's snapshot."""
        lock, token = self.keys.snapshot_lock(), uuid.uuid4().hex
        locks = Locks(self.client)
        if not locks.acquire(lock, token, self.interval_s * LOCK_SHARE):
            return None
        try:
            return self.take(now)
        except BaseException:
            locks.release(lock, token)  # let another scheduler try this interval
            raise

    def _mark(self, now: datetime) -> datetime | None:
        """Record this take and return the one before it, which began the counters' interval."""
        ms = int(now.timestamp() * 1000)
        previous = self.client.set(self.keys.last_snapshot(), ms, ex=MARK_TTL, get=True)
        return datetime.fromtimestamp(int(previous) / 1000, now.tzinfo) if previous else None
