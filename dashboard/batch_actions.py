"""Retry and cancel for a batch: one path for the page's buttons and the JSON API, so both
check the same role and write the same audit entry."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from starlette.requests import Request

from core.batch_store import BatchRecord
from core.failed import FailedJobRecord, FailedJobRepository
from core.retrying import RetryError, retry_failed
from dashboard.auth import require
from dashboard.context import dashboard

MAX_RETRY_HOPS = 100  # retries of retries followed before giving up on a job's newest failure


@dataclass
class RetryReport:
    retried: list[str] = field(default_factory=list)  # the new jobs' ids
    in_flight: list[str] = field(default_factory=list)  # retried already, and not failed again
    missing: list[str] = field(default_factory=list)  # no longer in the failed store
    problems: list[str] = field(default_factory=list)

    def message(self, batch_id: str) -> str:
        parts = [f"Retried {jobs(len(self.retried))} of batch {batch_id}."]
        if self.in_flight:
            parts.append(f"Left {jobs(len(self.in_flight))} whose retry has not failed (yet).")
        if self.missing:
            parts.append(f"{jobs(len(self.missing)).capitalize()} no longer in the failed store.")
        return " ".join(parts + self.problems)


def jobs(count: int) -> str:
    return f"{count} failed job{'' if count == 1 else 's'}"


def latest_failure(store: FailedJobRepository, job_id: str) -> FailedJobRecord | None:
    """The newest failure among a job and its retries: a retry runs under a new id, and
    when it fails too, that id is the one to retry. A retry not stored (queued, running,
    or gone) leaves the last failure, marked retried."""
    record = store.get(job_id)
    for _ in range(MAX_RETRY_HOPS):
        if record is None or record.retried_by is None:
            return record
        retry = store.get(record.retried_by)
        if retry is None:
            return record
        record = retry
    return record


def retry_batch(request: Request, record: BatchRecord) -> RetryReport:
    """Each failed job of the batch again, from the failed store, as ``skyline batches retry``;
    a retried job keeps its place in the batch, which counts it when it succeeds."""
    require(request, "operator")
    dash = dashboard(request)
    report = RetryReport()
    for job_id in dash.batches.failed_job_ids(record.id):
        failure = latest_failure(dash.failed, job_id)
        if failure is None:
            report.missing.append(job_id)
        elif failure.retried_by is not None:
            report.in_flight.append(job_id)
        else:
            try:
                report.retried.append(retry_failed(failure, dash.runtime.dispatcher, dash.failed))
            except RetryError as exc:
                report.problems.append(str(exc))
    counts = {name: len(ids) for name, ids in dataclasses.asdict(report).items()}
    dash.record(request, "batch.retry", record.id, **counts)
    return report


def cancel_batch(request: Request, record: BatchRecord) -> BatchRecord | None:
    """None when there is nothing left to cancel."""
    require(request, "operator")
    if record.finished or record.cancelled:
        return None
    dash = dashboard(request)
    cancelled = dash.batches.cancel(record.id)
    dash.record(request, "batch.cancel", record.id, name=record.name)
    return cancelled
