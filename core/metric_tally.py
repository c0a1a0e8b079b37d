"""A worker's tally of finished attempts, added to the metrics in one script call.

Counting each attempt in Redis would cost a script call per job for counters that
nobody reads before the next snapshot; the worker counts in memory instead, and the
tally rides in an ack's pipeline at most every so often, when the worker goes idle and
when it stops.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

MINUTE_MS = 60_000
HOUR_MS = 3_600_000


@dataclass(slots=True)
class PairTally:
    """One (queue, job name) pair."""

    processed: int = 0
    failed: int = 0
    runtime_us: int = 0
    runtime_max_us: int = 0
    waits: Counter[int] = field(default_factory=Counter)  # wait bucket index -> attempts


class Tally:
    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str], PairTally] = {}
        self.minutes: Counter[tuple[int, str]] = Counter()  # (minute, queue) -> attempts
        self.failed_hours: Counter[int] = Counter()
        self.attempts = 0

    def add(
        self, queue: str, job: str, runtime_us: int, wait_bucket: int | None, failed: bool, at: int
    ) -> None:
        pair = self.pairs.get((queue, job))
        if pair is None:
            pair = self.pairs[(queue, job)] = PairTally()
        pair.processed += 1
        pair.runtime_us += runtime_us
        pair.runtime_max_us = max(pair.runtime_max_us, runtime_us)
        if wait_bucket is not None:
            pair.waits[wait_bucket] += 1
        if failed:
            pair.failed += 1
            self.failed_hours[at // HOUR_MS] += 1
        self.minutes[(at // MINUTE_MS, queue)] += 1
        self.attempts += 1
