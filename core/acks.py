"""Acks waiting for the worker's next pop, so finishing a job costs no round trip of its own.

A completed job is acked in the same pipeline that reserves the next one. The
window in which a crash would run the job again is the time to that pop,
normally microseconds; stopping the worker flushes what is left.
"""

from __future__ import annotations

import logging
import threading

from core.queue import Reservation

log = logging.getLogger("skyline.worker")


class AckBuffer:
    def __init__(self) -> None:
        self._pending: list[Reservation] = []
        self._lock = threading.Lock()

    def add(self, reservations: list[Reservation]) -> None:
        with self._lock:
            self._pending.extend(reservations)

    def take(self) -> list[Reservation]:
        with self._lock:
            taken, self._pending = self._pending, []
        return taken

    @staticmethod
    def report_lost(lost: int) -> None:
        if lost:
            log.warning("%d job(s) finished after their lease was lost; they may run again", lost)
