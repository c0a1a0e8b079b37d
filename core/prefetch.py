"""Prefetching: a worker whose jobs are short reserves several per round trip.

A no-op job costs less than the round trip that reserves it, so a worker whose jobs
finish in microseconds reserves up to ``DEPTH_MAX`` per free slot and holds the extra
ones in memory until a slot is free. The depth follows the jobs' recent runtime, so a
held job waits about ``WINDOW_S`` behind the ones before it; jobs of a millisecond or more
are reserved one per slot, as if there were no prefetching. The risk is Celery's: a slow
job among fast ones keeps the jobs held behind it from other workers. So held jobs that
have waited ``HOLD_S`` are handed back to the queue (the lease keeper's thread checks
while a job runs), and a worker that pauses or stops hands back all it holds.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from core.queue import Reservation

WINDOW_S = 0.002
DEPTH_MAX = 16
HOLD_S = 1.0
SMOOTHING = 0.1  # weight of the newest runtime in the running average


class Prefetch:
    def __init__(self, enabled: bool = True, hold_s: float = HOLD_S) -> None:
        self.enabled = enabled
        self.hold_s = hold_s
        self._runtime_s: float | None = None  # running average; None until a job finished
        self._held: deque[Reservation] = deque()
        self._held_since = 0.0
        self._lock = threading.Lock()  # the lease keeper's thread hands back stale jobs

    def depth(self) -> int:
        """How many jobs to reserve per free slot."""
        runtime = self._runtime_s
        if not self.enabled or runtime is None:
            return 1
        return max(1, min(DEPTH_MAX, int(WINDOW_S / max(runtime, 1e-9))))

    def observe(self, runtime_s: float) -> None:
        """A job finished after ``runtime_s``; slots may call this from several threads,
        where a lost update only nudges an average."""
        average = self._runtime_s
        self._runtime_s = (
            runtime_s if average is None else average + SMOOTHING * (runtime_s - average)
        )

    def hold(self, reservations: list[Reservation]) -> None:
        if not reservations:
            return
        with self._lock:
            self._held.extend(reservations)
            self._held_since = time.monotonic()

    def take(self, count: int) -> list[Reservation]:
        """Up to ``count`` held jobs to start, oldest first."""
        with self._lock:
            return [self._held.popleft() for _ in range(min(count, len(self._held)))]

    def give_up(self, *, stale_only: bool = False) -> list[Reservation]:
        """The held jobs to hand back: all of them, or with ``stale_only`` only once they
        have waited ``hold_s`` (then all have, as they were reserved together)."""
        with self._lock:
            if stale_only and time.monotonic() - self._held_since < self.hold_s:
                return []
            held, self._held = list(self._held), deque()
        return held
