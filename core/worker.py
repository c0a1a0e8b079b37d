"""The worker: one process that reserves jobs and runs them in ``concurrency`` slots.

One tick reserves as many jobs as there are free slots (one Lua call), or several
per slot when the jobs are short (see ``core.prefetch``), runs them, and settles each.
With one slot everything runs on the main thread; with more, async jobs share an event
loop thread and sync jobs run in a thread pool.
Signal handlers only set flags that the next tick reads.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import redis

from core.acks import AckBuffer, Acks
from core.context import Services
from core.events import JobProcessed, JobProcessing, WorkerLooping, WorkerStopping, events
from core.execution import (
    JobTimeoutError,
    Outcome,
    Prepared,
    Result,
    WorkerDefaults,
    prepare,
    refuse_before_running,
    run_async,
    run_sync,
)
from core.leases import LeaseKeeper, Running
from core.locks import Locks
from core.payload import Payload, PayloadError, now_ms, parse
from core.prefetch import Prefetch
from core.queue import RedisQueue, Reservation
from core.recording import Recorder
from core.redis_backoff import RedisBackoff
from core.registry import JobRegistry
from core.settlement import Settler
from core.slots import Slots
from core.worker_limits import EXIT_OK, EXIT_TIMED_OUT, Limits
from core.workflows import after_job

if TYPE_CHECKING:
    from core.failed import FailedJobRepository
    from core.workflows import Workflows

log = logging.getLogger("skyline.worker")

ACKED = (Result.COMPLETED, Result.DELETED)
WORKFLOW_RETRY_S = 5
ASYNC_STUCK_GRACE_S = 2.0
PAUSE_POLL_S = 0.1
IN_FLIGHT_POLL_S = 0.05


@dataclass(frozen=True)
class WorkerOptions:
    queues: tuple[str, ...] = ("default",)
    concurrency: int = 1
    once: bool = False
    max_jobs: int = 0
    max_time_s: float = 0
    memory_mb: int = 256
    sleep_s: float = 3.0
    stop_when_empty: bool = False
    rest_s: float = 0
    lease_s: float = 30
    status_fd: int | None = None  # to the supervisor: b"R" ready, b"B" job started, b"I" ended
    paused: bool = False  # started by a paused pool: no jobs until SIGCONT
    defaults: WorkerDefaults = field(default_factory=WorkerDefaults)


class Worker:
    def __init__(
        self,
        queue: RedisQueue,
        open_failed_store: Callable[[], FailedJobRepository],
        registry: JobRegistry,
        signing_keys: list[str],
        options: WorkerOptions,
        workflows: Workflows | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.queue = queue
        self.registry = registry
        self.signing_keys = signing_keys
        self.options = options
        self.recorder = recorder
        self.settler = Settler(queue, open_failed_store, options.defaults, recorder)
        self.workflows = workflows
        self.services = Services(queue.client, queue.keys, workflows)
        self.locks = Locks(queue.client)
        announce = recorder.reserved if recorder is not None else None
        self.prefetch = Prefetch(enabled=not (options.once or options.rest_s))
        self.leases = LeaseKeeper(
            queue, options.lease_s, self._overrun, announce, self._hand_back_stale
        )
        self.should_stop = False
        self.paused = options.paused
        self._announced_pause = False
        self.exit_status = EXIT_OK
        self.processed = 0
        self.limits = Limits(options)
        self._slots = Slots(options.concurrency)
        self._redis = RedisBackoff(options.lease_s)
        self._token_prefix = uuid.uuid4().hex[:16]
        self._tokens = itertools.count()
        self._acks = AckBuffer()

    def run(self, *, handle_signals: bool = True) -> int:
        """Work until stopped; ``handle_signals=False`` when embedding in another program.

        The first status, b"R", tells a supervisor that SIGUSR2 is now safe to send: before
        the handlers are in place, its default action would kill this process.
        """
        if handle_signals:
            self._install_signals()
        self._report(b"R")
        self.leases.start()
        log.info("worker %d processing %s", os.getpid(), ",".join(self.options.queues))
        try:
            while not self.should_stop:
                self.tick()
        finally:
            self._drain()
            self.leases.stop()
            events.emit(WorkerStopping(self.exit_status))
        return self.exit_status

    def stop(self, status: int = EXIT_OK) -> None:
        self.exit_status = status
        self.should_stop = True

    def tick(self) -> None:
        """One iteration: reserve what the free slots can take, run it, check limits."""
        if events.wants(WorkerLooping):
            events.emit(WorkerLooping(self.options.queues))
        if self.limits.out_of_time():
            self.stop()
            return
        if self.paused != self._announced_pause:
            self._announced_pause = self.paused
            log.info("paused: no new jobs until SIGCONT" if self.paused else "continuing")
        if self.paused:
            self._hand_back()
            time.sleep(PAUSE_POLL_S)
            return
        free = self._slots.take(PAUSE_POLL_S)
        if not free:
            return
        self._hand_back_stale()
        reserved = self.prefetch.take(free)
        if not reserved:
            try:
                reserved, next_due = self._reserve(free * self.prefetch.depth())
                self._redis.reset()
            except redis.RedisError as exc:
                self._slots.give_back(free)
                self._redis.wait(exc)
                return
            if not reserved:
                self._slots.give_back(free)
                self._idle(next_due, free * self.prefetch.depth())
                return
            self.prefetch.hold(reserved[free:])
            reserved = reserved[:free]
        self._slots.give_back(free - len(reserved))
        with self._slots.starting_together():
            for reservation in reserved:
                self._start(reservation)
        self._check_limits()

    def _reserve(self, count: int) -> tuple[list[Reservation], int | None]:
        """Pop from the queues in priority order; the first pop also acks finished jobs."""
        next_due: int | None = None
        acks = self._acks.take()
        for name in self.options.queues:
            try:
                popped, lost = self.queue.ack_and_pop(
                    acks.reservations,
                    name,
                    self._new_tokens(count),
                    self.options.lease_s,
                    acks.also(),
                )
            except redis.RedisError:
                self._acks.restore(acks)
                raise
            self._acks.report_lost(lost)
            acks = Acks()
            if popped.reserved:
                return popped.reserved, None
            if popped.next_due_ms is not None:
                next_due = min(next_due or popped.next_due_ms, popped.next_due_ms)
        return [], next_due

    def _new_tokens(self, count: int) -> list[str]:
        return [f"{self._token_prefix}{next(self._tokens)}" for _ in range(count)]

    def _hand_back(self, *, stale_only: bool = False) -> None:
        """Return held jobs to their queue (see ``core.prefetch``)."""
        held = self.prefetch.give_up(stale_only=stale_only)
        if held:
            self._redis.retry(self.queue.hand_back, held)

    def _hand_back_stale(self) -> None:
        self._hand_back(stale_only=True)

    def _flush_acks(self) -> None:
        self._redis.retry(self._send_acks)

    def _send_acks(self) -> None:
        """Acks left over, and the records and metrics gathered so far: before the worker
        waits or stops, as nothing else will carry them."""
        self._acks.send(self.queue, self.recorder.flush() if self.recorder else None)

    def _idle(self, next_due_ms: int | None, count: int) -> None:
        """Flush what waits to be sent, then wait for a push; a worker on one queue also
        reserves up to ``count`` jobs as it wakes, in the same round trip, and holds them
        for the next tick."""
        # Read before the flush: a job buffers its ack before it gives its slot back, so
        # with no slot taken now, the flush carries every ack there is.
        in_flight = self._slots.in_use()
        try:
            self._send_acks()
        except redis.RedisError as exc:
            self._redis.wait(exc)
            return
        if self.options.once or (self.options.stop_when_empty and not in_flight):
            self.stop()
            return
        timeout = min(self.options.sleep_s, IN_FLIGHT_POLL_S) if in_flight else self.options.sleep_s
        if next_due_ms is not None:
            timeout = min(timeout, max(next_due_ms - now_ms(), 10) / 1000)
        queues = self.options.queues
        try:
            if len(queues) == 1:
                tokens, lease_s = self._new_tokens(count), self.options.lease_s
                self.prefetch.hold(
                    self.queue.wait_and_pop(queues[0], timeout, tokens, lease_s).reserved
                )
            else:
                self.queue.wait(list(queues), timeout)
        except redis.RedisError as exc:
            self._redis.wait(exc)

    def _start(self, reservation: Reservation) -> None:
        begun = self._begin(reservation)
        if begun is None:
            self._slots.give_back()
            return
        payload, prepared = begun

        def finish(outcome: Outcome) -> None:
            self._finish(reservation, payload, prepared, outcome)

        def run_here() -> Outcome:
            return run_sync(prepared, payload, self.services)

        def run_on_loop() -> Awaitable[Outcome]:
            timeout = payload.option("timeout", self.options.defaults.timeout)
            return run_async(prepared, payload, timeout, self.services)

        if prepared.is_async:
            self._slots.run_async(run_on_loop, finish, lambda outcome: outcome.result in ACKED)
        else:
            self._slots.run_sync(run_here, finish)

    def _begin(self, reservation: Reservation) -> tuple[Payload, Prepared] | None:
        """Open and check the payload; settle at once what cannot run."""
        try:
            payload = parse(reservation.raw, self.signing_keys)
        except PayloadError as exc:
            self._redis.retry(self.settler.fail_poison, reservation, exc)
            return None
        refusal = refuse_before_running(payload, self.options.defaults, now_ms())
        prepared = prepare(payload, self.registry)
        settle_now = refusal or (prepared if isinstance(prepared, Outcome) else None)
        if settle_now is not None:
            result = self._settle(reservation, payload, settle_now)
            if result is Result.FAILED and isinstance(prepared, Prepared):
                self._failed_hook(prepared, settle_now.exception)
            self._log(payload, settle_now, result.value.upper())
            return None
        assert isinstance(prepared, Prepared)
        unique = payload.body.get("unique")
        if unique and unique.get("until_processing"):
            self._redis.retry(self.locks.release, unique["key"], payload.id)
        timeout = payload.option("timeout", self.options.defaults.timeout)
        grace = ASYNC_STUCK_GRACE_S if prepared.is_async else 0
        self.leases.track(reservation, payload, timeout + grace if timeout else None)
        self._report(b"B")
        if events.wants(JobProcessing):
            events.emit(
                JobProcessing(payload.id, payload.job_name, payload.queue, payload.attempts)
            )
        return payload, prepared

    def _finish(
        self, reservation: Reservation, payload: Payload, prepared: Prepared, outcome: Outcome
    ) -> None:
        try:
            self.leases.untrack(reservation)
            self.prefetch.observe(outcome.runtime_s)
            result = self._settle(reservation, payload, outcome)
            if result is Result.FAILED:
                self._failed_hook(prepared, outcome.exception)
            self.processed += 1
            self._report(b"I")
            self._log(payload, outcome, result.value.upper())
        except Exception:
            log.exception("could not settle %s; its lease will bring it back", payload.job_name)
        finally:
            self._slots.give_back()

    def _settle(self, reservation: Reservation, payload: Payload, outcome: Outcome) -> Result:
        """Settle with the queue, then move the job's chain, batch and unique lock along."""
        if outcome.result not in ACKED:
            result = self._redis.retry(self.settler.settle, reservation, payload, outcome)
            if result is Result.FAILED:
                self._move_on(payload, outcome, result)
            return result or Result.RELEASED
        if not self._move_on(payload, outcome, outcome.result):
            self.settler.release(reservation, payload, WORKFLOW_RETRY_S, exception=False)
            return Result.RELEASED
        record = self.recorder.completed(payload, outcome.runtime_s) if self.recorder else None
        self._acks.add(reservation, record)
        if outcome.result is Result.COMPLETED and events.wants(JobProcessed):
            event = JobProcessed(payload.id, payload.job_name, payload.queue, outcome.runtime_s)
            events.emit(event)
        return outcome.result

    def _move_on(self, payload: Payload, outcome: Outcome, result: Result) -> bool:
        try:
            after_job(self.workflows, self.locks, payload, outcome, result)
        except Exception:
            log.exception("could not move %s's chain or batch along; retrying", payload.job_name)
            return False
        return True

    def _failed_hook(self, prepared: Prepared, exc: BaseException | None) -> None:
        try:
            prepared.definition.call_failed_hook(
                prepared.call, prepared.args, prepared.kwargs, exc or RuntimeError("failed")
            )
        except Exception:
            log.exception("the failed() hook of %s raised", prepared.definition.name)

    def _overrun(self, running: Running) -> None:
        """Called by the lease keeper when a job outlives its timeout: record it, then exit.

        A thread cannot be killed, so the process goes; the other jobs it held are
        released first, and held ones handed back, so they do not wait out their leases.
        """
        self._hand_back()
        self._flush_acks()
        payload = running.payload
        exc = JobTimeoutError(f"{payload.job_name} ran longer than its timeout and was killed")
        result = self._redis.retry(
            self.settler.settle, running.reservation, payload, Outcome(Result.RAISED, exc)
        )
        if result is Result.FAILED:
            prepared = prepare(payload, self.registry)
            if isinstance(prepared, Prepared):
                self._failed_hook(prepared, exc)
        outcome = result.value if result else "unsettled"
        log.error("%s timed out (%s); the worker exits", payload.job_name, outcome)
        for other in self.leases.running():
            if other.reservation != running.reservation:
                self.settler.release(other.reservation, other.payload, 0, exception=False)
        logging.shutdown()
        os._exit(EXIT_TIMED_OUT)

    def _check_limits(self) -> None:
        status = self.limits.after_jobs(self.processed)
        if status is not None:
            self.stop(status)
        elif self.options.rest_s:
            time.sleep(self.options.rest_s)

    def _drain(self) -> None:
        """Hand back held jobs and wait for running ones (their slots) before exiting."""
        self._hand_back()
        self._slots.drain()
        self._flush_acks()

    def _report(self, status: bytes) -> None:
        """Tell the supervisor (if any) a status (see ``status_fd``); never block or fail on it."""
        if self.options.status_fd is None:
            return
        with contextlib.suppress(OSError):  # a full or closed pipe: the supervisor copes
            os.write(self.options.status_fd, status)

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())
        signal.signal(signal.SIGUSR2, lambda *_: setattr(self, "paused", True))
        signal.signal(signal.SIGCONT, lambda *_: setattr(self, "paused", False))

    def _log(self, payload: Payload, outcome: Outcome, word: str) -> None:
        if log.isEnabledFor(logging.INFO):
            detail = f" ({outcome.exception})" if outcome.exception else ""
            log.info(
                "%s %s %.1f ms %s%s",
                payload.queue,
                payload.job_name,
                outcome.runtime_s * 1000,
                word,
                detail,
            )
