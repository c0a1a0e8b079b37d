"""What the job lists show: a request's filters, checked, and the rows of one page.

Pending, completed and silenced jobs are read from their Redis records (newest first, by
the ``before`` cursor); failed jobs from the durable SQL store (numbered pages). Both come
out as ``JobRow``, so the pages and the API show them alike.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.exceptions import HTTPException

from core.failed import FailedJobRecord
from core.job_record import JobIndex, JobRecord
from core.record_pages import Page
from dashboard.context import Dashboard

RECORD_LISTS = {
    "pending": JobIndex.PENDING,
    "completed": JobIndex.COMPLETED,
    "silenced": JobIndex.SILENCED,
}
STATUSES = (*RECORD_LISTS, "failed")
RECORD_FILTERS = ("queue", "job", "tag")
FAILED_FILTERS = ("queue", "job", "q")
MAX_TEXT = 255


def text_problem(name: str, value: str) -> str | None:
    """Why ``value`` cannot be a queue, job name, tag or search text; None when it can."""
    if len(value) > MAX_TEXT:
        return f"{name} is longer than {MAX_TEXT} characters."
    if any(unicodedata.category(char) == "Cc" for char in value):
        return f"{name} must not contain control characters (such as newlines or tabs)."
    return None


@dataclass(frozen=True)
class JobFilter:
    queue: str | None = None
    job: str | None = None
    tag: str | None = None
    q: str | None = None  # text in the exception (failed jobs only)

    def params(self) -> dict[str, str]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    def query(self, **extra: object) -> str:
        """The filter (and ``extra``) as a query string, for links that keep it."""
        more = {name: str(value) for name, value in extra.items() if value is not None}
        return urlencode(self.params() | more)

    @property
    def active(self) -> bool:
        return bool(self.params())

    def without(self, *names: str) -> JobFilter:
        return replace(self, **dict.fromkeys(names))


def parse_filter(
    values: Mapping[str, Any], allowed: tuple[str, ...], status_code: int
) -> JobFilter:
    """A filter from query parameters or a JSON object; ``status_code`` with the reason
    when a value is not text, too long, or not a filter of this list."""
    found: dict[str, str] = {}
    for name in JobFilter.__dataclass_fields__:
        value = values.get(name)
        if value is not None and not isinstance(value, str):
            raise HTTPException(status_code, f"{name} must be text.")
        if not value or not value.strip():
            continue
        if name not in allowed:
            listed = ", ".join(allowed)
            raise HTTPException(status_code, f"This list filters by {listed}, not by {name}.")
        problem = text_problem(name, value)
        if problem:
            raise HTTPException(status_code, problem)
        found[name] = value.strip()
    return JobFilter(**found)


def filters_of(status: str) -> tuple[str, ...]:
    return FAILED_FILTERS if status == "failed" else RECORD_FILTERS


@dataclass(frozen=True)
class JobRow:
    """One job in a list. Times are UTC; ``failed_id`` is its row in the failed store."""

    id: str
    name: str
    queue: str
    status: str
    tags: list[str]
    attempts: int | None
    pushed_at: datetime | None
    finished_at: datetime | None  # completed or failed
    due_at: datetime | None  # delayed, or released to run again: when it is due
    runtime_ms: float | None
    exception: str | None
    failed_id: int | None = None
    retried_by: list[str] | None = None


def moment(ms: float | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, UTC) if ms else None


def row_of_record(record: JobRecord) -> JobRow:
    return JobRow(
        id=record.id,
        name=record.name,
        queue=record.queue,
        status=record.status.value,
        tags=[str(tag) for tag in record.tags],
        attempts=record.attempts,
        pushed_at=moment(record.pushed_at),
        finished_at=moment(record.completed_at or record.failed_at),
        due_at=moment(record.available_at) if delayed(record) else None,
        runtime_ms=record.runtime_ms,
        exception=record.exception,
        retried_by=record.retried_by,
    )


def envelope_of(raw: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The envelope and the body of a stored payload, unverified and best effort: a
    failed store row may hold a payload that was never valid."""
    try:
        outer = json.loads(raw)
        body = json.loads(outer["body"]) if isinstance(outer, dict) else {}
    except (ValueError, KeyError, TypeError):
        return {}, {}
    return outer, body if isinstance(body, dict) else {}


def row_of_failure(failure: FailedJobRecord, record: JobRecord | None) -> JobRow:
    """The failed store's row, with the attempts, tags and runtime that its Redis record
    (while it lasts) or its payload know."""
    outer, body = envelope_of(failure.payload)
    tags = record.tags if record else body.get("tags")
    attempts = record.attempts if record else outer.get("attempts")
    return JobRow(
        id=failure.uuid,
        name=failure.job_name,
        queue=failure.queue,
        status="failed",
        tags=[str(tag) for tag in tags] if isinstance(tags, list) else [],
        attempts=attempts if isinstance(attempts, int) else None,
        pushed_at=moment(body.get("pushed_at") if isinstance(body.get("pushed_at"), int) else None),
        finished_at=failure.failed_at,
        due_at=None,
        runtime_ms=record.runtime_ms if record else None,
        exception=f"{failure.exception_class}: {failure.message}",
        failed_id=failure.id,
        retried_by=[failure.retried_by] if failure.retried_by else [],
    )


@dataclass(frozen=True)
class RecordRows:
    rows: list[JobRow]
    next_before: int | None  # a score, exact as an integer (see core.job_record.score_at)


def record_rows(
    dash: Dashboard, index: JobIndex, flt: JobFilter, before: int | None, limit: int
) -> RecordRows:
    page: Page[JobRecord] = dash.records.page(
        index, before=before, limit=limit, queue=flt.queue, job_name=flt.job, tag=flt.tag
    )
    return RecordRows([row_of_record(r) for r in page.records], page.next_before)


def failed_total(dash: Dashboard, flt: JobFilter) -> int:
    return dash.failed.count(queue=flt.queue, job_name=flt.job, search=flt.q)


def failed_rows(dash: Dashboard, flt: JobFilter, offset: int, limit: int) -> list[JobRow]:
    failures = dash.failed.list(
        queue=flt.queue, job_name=flt.job, search=flt.q, offset=offset, limit=limit
    )
    records = dash.records.get_many([f.uuid for f in failures])
    return [row_of_failure(f, r) for f, r in zip(failures, records, strict=True)]


def tab_counts(dash: Dashboard) -> dict[str, int]:
    counts = dash.records.counts()
    tabs = {status: counts[index] for status, index in RECORD_LISTS.items()}
    return tabs | {"failed": dash.failed.count()}


DELAY_SHOWN_MS = 1000  # a job becomes available a moment after its body is stamped


def delayed(record: JobRecord) -> bool:
    """Delayed, or released to run again later, as opposed to pushed just now."""
    return record.available_at - record.pushed_at >= DELAY_SHOWN_MS
