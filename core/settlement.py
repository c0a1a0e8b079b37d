"""Settling a job: applying its outcome to the queue, the failed store and the events.

Every write checks the lease (the reservation string carries the token), so a
worker that lost its lease cannot ack, release or fail a job that another
worker now owns.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from core import payload as payloads
from core.events import (
    JobExceptionOccurred,
    JobFailed,
    JobReleased,
    events,
)
from core.execution import Outcome, Result, WorkerDefaults, retry_after_exception
from core.payload import Payload
from core.queue import RedisQueue, Reservation
from core.recording import Recorder

if TYPE_CHECKING:
    from core.failed import FailedJobRepository

log = logging.getLogger("skyline.worker")

STORE_RETRY_DELAY_S = 30


@dataclass
class Settler:
    queue: RedisQueue
    open_failed_store: Callable[[], FailedJobRepository]
    defaults: WorkerDefaults
    recorder: Recorder | None = None  # the record and metrics ride in each settling write

    @cached_property
    def failed_store(self) -> FailedJobRepository:
        """Opened at the first failure: a worker whose jobs succeed never loads SQLAlchemy."""
        return self.open_failed_store()

    def settle(self, reservation: Reservation, payload: Payload, outcome: Outcome) -> Result:
        """Apply a job's unhappy ``outcome``; returns what finally happened to the job.

        Completed and deleted jobs are acked by the worker, in the round trip of its next pop.
        """
        if outcome.result is Result.RAISED:
            return self._after_exception(reservation, payload, outcome)
        if outcome.result is Result.RELEASED:
            self.release(
                reservation,
                payload,
                outcome.delay_s,
                exception=False,
                counts=outcome.counts,
                runtime_s=outcome.runtime_s,
            )
            return Result.RELEASED
        if outcome.result is Result.FAILED:
            return self.fail(reservation, payload, outcome.exception, outcome.runtime_s)
        raise ValueError(f"the worker acks {outcome.result} jobs itself")

    def _after_exception(
        self, reservation: Reservation, payload: Payload, outcome: Outcome
    ) -> Result:
        exc = outcome.exception
        assert exc is not None
        events.emit(JobExceptionOccurred(payload.id, payload.job_name, payload.queue, exc))
        delay = retry_after_exception(payload, exc, self.defaults, payloads.now_ms())
        if delay is None:
            return self.fail(reservation, payload, exc, outcome.runtime_s)
        self.release(reservation, payload, delay, exception=True, runtime_s=outcome.runtime_s)
        return Result.RELEASED

    def release(
        self,
        reservation: Reservation,
        payload: Payload,
        delay_s: float,
        *,
        exception: bool,
        counts: bool = True,
        runtime_s: float = 0.0,
    ) -> None:
        available_at = payloads.now_ms() + int(delay_s * 1000)
        new_raw = payload.released(available_at, exception=exception, counts=counts)
        record = None
        if self.recorder is not None:
            attempts = payload.attempts_kept(counts)
            record = self.recorder.released(payload, available_at, attempts, runtime_s)
        if not self.queue.release(reservation, new_raw, available_at, record):
            log.warning("could not release %s: its lease was lost", payload.job_name)
            return
        events.emit(JobReleased(payload.id, payload.job_name, payload.queue, delay_s))

    def fail(
        self,
        reservation: Reservation,
        payload: Payload,
        exc: BaseException | None,
        runtime_s: float = 0.0,
    ) -> Result:
        """Store the job as failed, then take it off the queue; never lose it on the way."""
        exc = exc or RuntimeError("failed")
        if not self._store(payload.id, payload, reservation, exc):
            self.release(reservation, payload, STORE_RETRY_DELAY_S, exception=False)
            return Result.RELEASED
        record = self.recorder.failed(payload, exc, runtime_s) if self.recorder else None
        if not self.queue.ack(reservation, record):
            self.failed_store.remove_by_uuid(payload.id)
            log.warning(
                "%s failed after its lease was lost; its new owner decides", payload.job_name
            )
            return Result.FAILED
        events.emit(JobFailed(payload.id, payload.job_name, payload.queue, exc))
        return Result.FAILED

    def fail_poison(self, reservation: Reservation, reason: BaseException) -> None:
        """A payload that cannot be trusted goes to the failed store as it was.

        It gets a fresh id: an unverified id could overwrite another job's record.
        """
        body = payloads.peek(reservation.raw)
        if self._store(str(uuid.uuid4()), None, reservation, reason, body=body):
            self.queue.ack(reservation)
        log.error("rejected a payload on %s: %s", reservation.queue, reason)

    def _store(
        self,
        job_id: str,
        payload: Payload | None,
        reservation: Reservation,
        exc: BaseException,
        body: dict | None = None,
    ) -> bool:
        body = payload.body if payload else (body or {})
        try:
            self.failed_store.record(
                uuid=job_id[:36],
                connection=str(body.get("connection", "?"))[:64],
                queue=reservation.queue,
                job_name=str(body.get("job", "(unreadable payload)"))[:255],
                payload=payloads.as_text(reservation.raw),
                exception_class=type(exc).__name__,
                message=payloads.as_text(str(exc)),
                traceback=payloads.as_text("".join(traceback.format_exception(exc))),
                retry_of=body.get("retry_of") if isinstance(body.get("retry_of"), str) else None,
            )
        except Exception:
            log.exception("could not store failed job %s; it stays queued", job_id)
            return False
        return True
