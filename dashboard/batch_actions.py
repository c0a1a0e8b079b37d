"""Retry and cancel for a batch: one path for the page's buttons and the JSON API, so both
check the same role and write the same audit entry.

A Claude batch of the Message Batches API has requests for members, not jobs: retrying it
sends its errored and expired requests again as a new batch (``retry_failed_requests``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from starlette.requests import Request

from core.batch_store import BatchRecord
from core.claude.batches import retry_failed_requests
from core.claude.message_batches import is_message_batch
from core.retrying import BatchRetry, retry_batch_failures
from dashboard.auth import require
from dashboard.claude_requests import claude_services
from dashboard.context import Dashboard, dashboard


@dataclass
class RetryReport(BatchRetry):
    # A Message Batches batch's retry: the batch that sent its requests again, now
    # (``retried`` are the new requests) or before (``retried`` is empty).
    retry_batch: str | None = None

    def message(self, batch_id: str) -> str:
        if self.retry_batch is not None:
            return self._requests_message(batch_id)
        if self.problems and not (self.retried or self.in_flight or self.missing):
            return " ".join(self.problems)
        parts = [f"Retried {jobs(len(self.retried))} of batch {batch_id}."]
        if self.in_flight:
            parts.append(f"Left {jobs(len(self.in_flight))} whose retry has not failed (yet).")
        if self.missing:
            parts.append(f"{jobs(len(self.missing)).capitalize()} no longer in the failed store.")
        return " ".join(parts + self.problems)

    def _requests_message(self, batch_id: str) -> str:
        if self.retried:
            sent = requests(len(self.retried))
            return f"Sent {sent} of batch {batch_id} again as batch {self.retry_batch}."
        return (
            f"Batch {batch_id} was retried already, as batch {self.retry_batch}:"
            " retry that batch's failed requests from its page."
        )


def jobs(count: int) -> str:
    return f"{count} failed job{'' if count == 1 else 's'}"


def requests(count: int) -> str:
    return f"{count} failed or expired request{'' if count == 1 else 's'}"


def retry_batch(request: Request, record: BatchRecord) -> RetryReport:
    """Each failed job of the batch again, from the failed store, as ``skyline batches retry``;
    a retried job keeps its place in the batch, which counts it when it succeeds. A Message
    Batches batch's failed and expired requests go out again as a new batch instead."""
    require(request, "operator")
    dash = dashboard(request)
    report = (
        _retry_requests(request, record) if is_message_batch(record) else _retry_jobs(dash, record)
    )
    counts = {
        name: len(ids) for name, ids in dataclasses.asdict(report).items() if isinstance(ids, list)
    }
    detail = {"retry_batch": report.retry_batch} if report.retry_batch else {}
    dash.record(request, "batch.retry", record.id, **counts, **detail)
    return report


def _retry_jobs(dash: Dashboard, record: BatchRecord) -> RetryReport:
    job_ids = dash.batches.failed_job_ids(record.id)
    done = retry_batch_failures(job_ids, dash.runtime.dispatcher, dash.failed)
    return RetryReport(**dataclasses.asdict(done))


def _retry_requests(request: Request, record: BatchRecord) -> RetryReport:
    try:
        done = retry_failed_requests(record.id, services=claude_services(request))
    except ValueError as exc:  # RequestValidationError too: a request no longer accepted
        return RetryReport(problems=[f"Batch {record.id} could not be retried: {exc}."])
    if not done.requests and not done.already:
        return RetryReport(problems=[f"Batch {record.id} has no failed or expired requests."])
    return RetryReport(retried=done.requests, retry_batch=done.batch_id)


def cancel_batch(request: Request, record: BatchRecord) -> BatchRecord | None:
    """None when there is nothing left to cancel."""
    require(request, "operator")
    if record.finished or record.cancelled:
        return None
    dash = dashboard(request)
    cancelled = dash.batches.cancel(record.id)
    dash.record(request, "batch.cancel", record.id, name=record.name)
    return cancelled
