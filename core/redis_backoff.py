"""Riding out a Redis outage: back off between tries, and give up on a write when it cannot matter.

A worker keeps looping through a Redis blip, waiting longer after each failure in a
row. A settling write is retried for as long as a lease lasts and no longer: after
that the reservation has expired, so the write could not succeed anyway, and a
stopping worker must not hang on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import redis

log = logging.getLogger("skyline.worker")

MAX_REDIS_BACKOFF_S = 5.0

T = TypeVar("T")


class RedisBackoff:
    def __init__(self, give_up_after_s: float) -> None:
        self.give_up_after_s = give_up_after_s
        self._failures = 0

    def reset(self) -> None:
        """Redis answered: the next failure waits the shortest time again."""
        self._failures = 0

    def wait(self, exc: Exception) -> None:
        self._failures += 1
        wait = min(0.1 * 2**self._failures, MAX_REDIS_BACKOFF_S)
        log.warning("Redis error (%s); retrying in %.1f s", exc, wait)
        time.sleep(wait)

    def retry(self, fn: Callable[..., T], *args: object) -> T | None:
        """``fn(*args)`` through Redis errors; None once ``give_up_after_s`` has passed."""
        deadline = time.monotonic() + self.give_up_after_s
        while True:
            try:
                return fn(*args)
            except redis.RedisError as exc:
                if time.monotonic() > deadline:
                    log.error(
                        "Redis unreachable for a whole lease (%s): giving up; the job "
                        "comes back when its lease expires",
                        exc,
                    )
                    return None
                self.wait(exc)
