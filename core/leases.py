"""The lease keeper: a thread that renews the leases of running jobs and enforces timeouts.

It runs beside the jobs, not inside them, so it keeps working while a sync job
sits in ``time.sleep`` or C code, and it stops when the process is stopped
(SIGSTOP) or dies, which is exactly when the lease should run out.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from core.payload import Payload
from core.queue import RedisQueue, Reservation

log = logging.getLogger("skyline.worker")

TICK_S = 0.1


@dataclass
class Running:
    reservation: Reservation
    payload: Payload
    deadline: float | None
    started: float
    announced: bool = False

    @property
    def job_name(self) -> str:
        return self.payload.job_name


class LeaseKeeper:
    """``on_long_running`` hears once of each job still running a tick after it started,
    so the many jobs that finish sooner cost no write of their own. ``on_tick`` runs every
    tick, for the worker's own checks while its main thread is busy with a job."""

    def __init__(
        self,
        queue: RedisQueue,
        lease_s: float,
        on_overrun: Callable[[Running], None],
        on_long_running: Callable[[list[Payload]], None] | None = None,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self.queue = queue
        self.lease_s = lease_s
        self.on_overrun = on_overrun
        self.on_long_running = on_long_running
        self.on_tick = on_tick
        self._running: dict[str, Running] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="skyline-leases", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def track(self, reservation: Reservation, payload: Payload, timeout_s: float | None) -> None:
        now = time.monotonic()
        deadline = now + timeout_s if timeout_s else None
        with self._lock:
            self._running[reservation.raw] = Running(reservation, payload, deadline, now)

    def untrack(self, reservation: Reservation) -> None:
        with self._lock:
            self._running.pop(reservation.raw, None)

    def running(self) -> list[Running]:
        with self._lock:
            return list(self._running.values())

    def _run(self) -> None:
        renew_every = self.lease_s / 3
        last_renewal = time.monotonic()
        while not self._stop.wait(TICK_S):
            now = time.monotonic()
            for job in self.running():
                if job.deadline is not None and now > job.deadline:
                    self.on_overrun(job)
            self._announce(now)
            self._tick()
            if now - last_renewal >= renew_every:
                self._renew()
                last_renewal = now

    def _announce(self, now: float) -> None:
        long_running = [
            job for job in self.running() if not job.announced and now - job.started >= TICK_S
        ]
        if not long_running or self.on_long_running is None:
            return
        try:
            self.on_long_running([job.payload for job in long_running])
        except Exception:  # it must never stop the renewals
            log.exception("could not record running jobs; retrying")
            return
        for job in long_running:
            job.announced = True

    def _tick(self) -> None:
        if self.on_tick is None:
            return
        try:
            self.on_tick()
        except Exception:  # it must never stop the renewals
            log.exception("a worker check on the lease keeper's thread failed; retrying")

    def _renew(self) -> None:
        jobs = self.running()
        if not jobs:
            return
        try:
            held = self.queue.renew([job.reservation for job in jobs], self.lease_s)
        except redis.RedisError as exc:
            log.warning("could not renew job leases (%s); retrying", exc)
            return
        for job, ok in zip(jobs, held, strict=True):
            if not ok:
                log.warning("lost the lease on %s: another worker may run it again", job.job_name)
