"""Recording a job's lifecycle: what the dispatcher and the worker write, and when.

A ``Recorder`` turns each lifecycle event into the record and metrics writes, as one
``Writes`` callable that the queue operation the event follows runs in its pipeline:
pushes in the push, failures in the failed job's ack, releases in the release.

Completions are the hot path: a script call per job cost as much as the no-op job
itself. So completed records and the metrics of every finished attempt are gathered in
memory and ride, in one script call each, in the pipeline of the next ack at most every
``FLUSH_EVERY_S`` or ``FLUSH_AT_ATTEMPTS`` attempts, and whenever the worker goes idle or
stops (``flush``): a record reads "completed" at most that much later than the ack.
Trimming the indexes rides along at most every ``TRIM_EVERY_S``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import redis
from redis.client import Pipeline

from core.job_record import JobStatus
from core.keys import Keys
from core.metric_tally import Tally
from core.metrics import MetricsRepository, wait_bucket
from core.payload import Payload, now_ms
from core.pipelines import Writes, execute
from core.records import Ending, JobRecordRepository, PushedJob
from core.settings import RecordSettings

FLUSH_EVERY_S = 0.1
FLUSH_AT_ATTEMPTS = 500
TRIM_EVERY_S = 10.0

Finished = tuple[Payload, float, int, JobStatus]  # an attempt: runtime (s), when (ms), how


class Recorder:
    def __init__(
        self, records: JobRecordRepository, metrics: MetricsRepository, settings: RecordSettings
    ) -> None:
        self.records = records
        self.metrics = metrics
        self._silenced = frozenset(settings.silenced)
        self._silenced_tags = frozenset(settings.silenced_tags)
        self._finished: list[Finished] = []
        self._lock = threading.Lock()  # slots finish jobs on several threads
        self._next_flush = 0.0
        self._next_trim = 0.0

    @classmethod
    def open(cls, client: redis.Redis, keys: Keys, settings: RecordSettings) -> Recorder:
        records = JobRecordRepository(client, keys, settings)
        return cls(records, MetricsRepository(client, keys), settings)

    def pushed(self, jobs: list[PushedJob]) -> Writes:
        def write(pipe: Pipeline) -> None:
            self.records.pushed(pipe, jobs)
            self.metrics.pushed(pipe, Counter((j.body["queue"], j.body["job"]) for j in jobs))
            for job in jobs:
                if job.body.get("retry_of"):
                    self.records.retried(pipe, job.body["retry_of"], job.body["id"])
            self._maybe_trim(pipe)

        return write

    def reserved(self, payloads: list[Payload]) -> None:
        """Jobs still running a while after they were reserved: no queue operation goes
        with this write, so it makes its own round trip, from the lease keeper's thread."""
        pipe = self.records.client.pipeline(transaction=False)
        for payload in payloads:
            self.records.reserved(pipe, payload)
        execute(pipe)

    def completed(self, payload: Payload, runtime_s: float) -> Writes | None:
        """What is due to ride with this job's ack: often nothing yet.

        Only a note is taken here; the record and the tally are made for many jobs at
        once when they are due, which costs a fraction of doing it job by job.
        """
        with self._lock:
            self._finished.append((payload, runtime_s, now_ms(), JobStatus.COMPLETED))
        return self._due()

    def failed(self, payload: Payload, exc: BaseException, runtime_s: float) -> Writes:
        at, summary = now_ms(), f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._finished.append((payload, runtime_s, at, JobStatus.FAILED))
        due = self._due()

        def write(pipe: Pipeline) -> None:
            self.records.failed(
                pipe, payload, at=at, runtime_ms=runtime_s * 1000, exception=summary
            )
            if due is not None:
                due(pipe)

        return write

    def released(
        self, payload: Payload, available_at: int, attempts: int, runtime_s: float
    ) -> Writes:
        with self._lock:
            self._finished.append((payload, runtime_s, now_ms(), JobStatus.RELEASED))
        due = self._due()

        def write(pipe: Pipeline) -> None:
            self.records.released(
                pipe,
                payload,
                available_at=available_at,
                attempts=attempts,
                runtime_ms=runtime_s * 1000,
            )
            if due is not None:
                due(pipe)

        return write

    def flush(self) -> Writes | None:
        """All that is gathered, for a worker about to wait or stop; None when nothing is."""
        return self._due(force=True)

    def silenced(self, payload: Payload) -> bool:
        if payload.job_name in self._silenced:
            return True
        tags = payload.body.get("tags") or ()
        return bool(self._silenced_tags) and not self._silenced_tags.isdisjoint(tags)

    def _due(self, *, force: bool = False) -> Writes | None:
        """Take what is gathered when it is time to write it, as the writes to do so."""
        now = time.monotonic()
        if not force and now < self._next_flush and len(self._finished) < FLUSH_AT_ATTEMPTS:
            return None
        with self._lock:
            finished, self._finished = self._finished, []
            self._next_flush = now + FLUSH_EVERY_S
        if not finished:
            return None
        tally, completions = self._gather(finished)

        def write(pipe: Pipeline) -> None:
            self.records.completed(pipe, completions)
            self.metrics.add(pipe, tally)
            self._maybe_trim(pipe)

        return write

    def _gather(self, finished: list[Finished]) -> tuple[Tally, list[Ending]]:
        tally, completions = Tally(), []
        for payload, runtime_s, at, status in finished:
            measured = payload.reserved_at > 0 and payload.available_at > 0
            wait_ms = max(payload.reserved_at - payload.available_at, 0)
            bucket = wait_bucket(wait_ms) if measured else None
            failed = status is JobStatus.FAILED
            runtime_us = int(runtime_s * 1_000_000)
            tally.add(payload.queue, payload.job_name, runtime_us, bucket, failed, at)
            if status is JobStatus.COMPLETED:
                silenced = self.silenced(payload)
                completions.append(
                    self.records.completion(
                        payload, at=at, runtime_ms=runtime_s * 1000, silenced=silenced
                    )
                )
        return tally, completions

    def _maybe_trim(self, pipe: Pipeline) -> None:
        """Two threads may both trim once in a while; that costs a command, not a mistake."""
        now = time.monotonic()
        if now >= self._next_trim:
            self._next_trim = now + TRIM_EVERY_S
            self.records.trim(pipe, now_ms())
