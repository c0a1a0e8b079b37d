"""One job as its detail page shows it: the Redis record while it lasts, the failed store's
row (exception, traceback) when the job failed, and what the payload says about both."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.failed import FailedJobRecord
from core.job_record import JobRecord, JobStatus
from dashboard.context import Dashboard
from dashboard.job_lists import envelope_of, moment

FINISHES = {
    JobStatus.COMPLETED: ("Completed", "ok"),
    JobStatus.SILENCED: ("Completed (silenced)", "ok"),
    JobStatus.FAILED: ("Failed", "bad"),
}


@dataclass(frozen=True)
class Moment:
    label: str
    at: datetime | None  # None: unknown, and left out of the timeline
    tone: str = ""  # "ok", "bad" or "" (a class of ol.timeline)


@dataclass(frozen=True)
class JobDetail:
    id: str
    name: str
    queue: str
    connection: str
    status: str
    tags: list[str]
    attempts: int | None
    runtime_ms: float | None
    payload: Any  # the envelope with its body opened; the raw text when it is no JSON
    timeline: list[Moment]
    exception: str | None
    traceback: str | None
    failed_id: int | None
    retried_from: str | None
    retried_by: list[str]
    batch_id: str | None
    expired: bool  # the Redis record is gone: all of this comes from the failed store


def read_detail(dash: Dashboard, job_id: str) -> JobDetail | None:
    record = dash.records.get(job_id)
    failure = dash.failed.get(record.id if record else job_id)
    if record is not None:
        return _from_record(record, failure)
    if failure is not None:
        return _from_failure(failure)
    return None


def open_payload(raw: str) -> Any:
    """The payload to show: its signed body is a JSON string inside the envelope."""
    try:
        document = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(document, dict) and isinstance(document.get("body"), str):
        with contextlib.suppress(ValueError):
            document = document | {"body": json.loads(document["body"])}
    return document


def batch_of(body: dict[str, Any]) -> str | None:
    """A batch member carries ``{"batch": {"id": ...}}``; a batch's callback ``batch_id``."""
    batch = body.get("batch")
    found = batch.get("id") if isinstance(batch, dict) else None
    if found is None and isinstance(body.get("kwargs"), dict):
        found = body["kwargs"].get("batch_id")
    return found if isinstance(found, str) else None


def _from_record(record: JobRecord, failure: FailedJobRecord | None) -> JobDetail:
    _, body = envelope_of(record.payload)
    retried_by = list(record.retried_by)
    if failure and failure.retried_by and failure.retried_by not in retried_by:
        retried_by.append(failure.retried_by)
    return JobDetail(
        id=record.id,
        name=record.name,
        queue=record.queue,
        connection=record.connection,
        status=record.status.value,
        tags=[str(tag) for tag in record.tags],
        attempts=record.attempts,
        runtime_ms=record.runtime_ms,
        payload=open_payload(record.payload),
        timeline=_record_timeline(record, failure),
        exception=_summary(failure) if failure else record.exception,
        traceback=failure.traceback if failure else None,
        failed_id=failure.id if failure else None,
        retried_from=record.retried_from,
        retried_by=retried_by,
        batch_id=batch_of(body),
        expired=False,
    )


def _from_failure(failure: FailedJobRecord) -> JobDetail:
    outer, body = envelope_of(failure.payload)
    tags, attempts = body.get("tags"), outer.get("attempts")
    return JobDetail(
        id=failure.uuid,
        name=failure.job_name,
        queue=failure.queue,
        connection=failure.connection,
        status="failed",
        tags=[str(tag) for tag in tags] if isinstance(tags, list) else [],
        attempts=attempts if isinstance(attempts, int) else None,
        runtime_ms=None,
        payload=open_payload(failure.payload),
        timeline=_failure_timeline(failure, body),
        exception=_summary(failure),
        traceback=failure.traceback,
        failed_id=failure.id,
        retried_from=failure.retry_of,
        retried_by=[failure.retried_by] if failure.retried_by else [],
        batch_id=batch_of(body),
        expired=True,
    )


def _summary(failure: FailedJobRecord) -> str:
    return f"{failure.exception_class}: {failure.message}"


def _record_timeline(record: JobRecord, failure: FailedJobRecord | None) -> list[Moment]:
    """What the record's fields say: it keeps the latest attempt's times, not every one."""
    moments = [Moment("Pushed", moment(record.pushed_at))]
    if record.available_at > record.pushed_at and record.status is JobStatus.PENDING:
        moments.append(Moment("Delayed until", moment(record.available_at)))
    if record.reserved_at:
        moments.append(Moment(f"Reserved (attempt {record.attempts})", moment(record.reserved_at)))
    if record.status is JobStatus.RELEASED:
        moments.append(Moment("Released, due again", moment(record.available_at)))
    finished = record.completed_at or record.failed_at
    if record.status in FINISHES and finished:
        label, tone = FINISHES[record.status]
        moments.append(Moment(label, moment(finished), tone))
    if failure and failure.retried_at:
        moments.append(Moment("Retried", failure.retried_at))
    return _in_order(moments)


def _failure_timeline(failure: FailedJobRecord, body: dict[str, Any]) -> list[Moment]:
    pushed = body.get("pushed_at")
    moments = [Moment("Pushed", moment(pushed))] if isinstance(pushed, int) else []
    moments.append(Moment("Failed", failure.failed_at, "bad"))
    if failure.retried_at:
        moments.append(Moment("Retried", failure.retried_at))
    return _in_order(moments)


def _in_order(moments: list[Moment]) -> list[Moment]:
    return sorted((m for m in moments if m.at is not None), key=lambda m: m.at)
