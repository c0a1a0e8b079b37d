"""Acks waiting for the worker's next pop, so finishing a job costs no round trip of its own.

A completed job is acked in the same pipeline that reserves the next one, and its
record and metrics ride with the ack. The window in which a crash would run the job
again is the time to that pop, normally microseconds; stopping the worker flushes what
is left.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

import redis
from redis.client import Pipeline

from core.pipelines import Writes
from core.queue import RedisQueue, Reservation

log = logging.getLogger("skyline.worker")


@dataclass
class Acks:
    reservations: list[Reservation] = field(default_factory=list)
    writes: list[Writes] = field(default_factory=list)

    def also(self) -> Writes | None:
        """All the buffered writes as one, for the pipeline of the ack."""
        if not self.writes:
            return None
        writes = self.writes

        def write(pipe: Pipeline) -> None:
            for each in writes:
                each(pipe)

        return write


class AckBuffer:
    def __init__(self) -> None:
        self._pending = Acks()
        self._lock = threading.Lock()

    def add(self, reservation: Reservation, writes: Writes | None = None) -> None:
        with self._lock:
            self._pending.reservations.append(reservation)
            if writes is not None:
                self._pending.writes.append(writes)

    def restore(self, acks: Acks) -> None:
        """Put back acks whose round trip failed, to go with the next one."""
        with self._lock:
            self._pending.reservations[:0] = acks.reservations
            self._pending.writes[:0] = acks.writes

    def take(self) -> Acks:
        with self._lock:
            taken, self._pending = self._pending, Acks()
        return taken

    def send(self, queue: RedisQueue, also: Writes | None = None) -> None:
        """Ack what is buffered, with ``also``, in a round trip of its own (when there is
        anything to send); on a Redis error the acks stay for the next try."""
        acks = self.take()
        if also is not None:
            acks.writes.append(also)
        if not acks.reservations and not acks.writes:
            return
        try:
            lost = queue.ack_many(acks.reservations, acks.also())
        except redis.RedisError:
            self.restore(acks)
            raise
        self.report_lost(lost)

    @staticmethod
    def report_lost(lost: int) -> None:
        if lost:
            log.warning("%d job(s) finished after their lease was lost; they may run again", lost)
