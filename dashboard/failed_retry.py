"""Retrying and forgetting failed jobs from the dashboard, one or many at a time.

Each retry is ``core.retrying``'s: the original payload, verified again, pushed under a new
id. A payload that cannot be retried (or an id nobody knows) is reported without stopping
the rest. Everything a filter matches goes the CLI's ``retry --all`` way, a chunk at a time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.failed import FailedJobRecord
from core.retrying import RetriedChunk, retry_pending, retry_records
from dashboard.context import Dashboard
from dashboard.job_lists import JobFilter

MAX_IDS = 1000  # ids in one request; more are retried by filter
MAX_ID_CHARS = 64


@dataclass(frozen=True)
class Retried:
    id: int
    uuid: str
    new_id: str


@dataclass(frozen=True)
class Refused:
    id: int
    reason: str


@dataclass
class RetryReport:
    retried: list[Retried] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)
    skipped: int = 0  # matched a filter but were retried before

    def summary(self) -> str:
        """One line for the flash message."""
        count = len(self.retried)
        parts = [f"Retried {count} failed job{'' if count == 1 else 's'}."]
        if self.unknown:
            parts.append(f"No failed job with id {', '.join(self.unknown)}.")
        for refusal in self.refused:
            parts.append(f"Could not retry {refusal.id}: {refusal.reason}")
        if self.skipped:
            parts.append(f"Left {self.skipped} alone that had been retried before.")
        return " ".join(parts)

    def audit_detail(self) -> dict[str, object]:
        return {
            "retried": {str(r.id): r.new_id for r in self.retried},
            "unknown": self.unknown,
            "refused": {str(r.id): r.reason for r in self.refused},
            "skipped": self.skipped,
        }


def retry_ids(dash: Dashboard, ids: list[str]) -> RetryReport:
    """Ids of the failed store, or job uuids; the unknown ones are named in the report."""
    report = RetryReport()
    found: dict[int, FailedJobRecord] = {}  # an id and its job's uuid are one retry
    for raw in dict.fromkeys(ids):
        failure = dash.failed.get(raw) if raw and len(raw) <= MAX_ID_CHARS else None
        if failure is None:
            report.unknown.append(raw[:MAX_ID_CHARS])
        else:
            found.setdefault(failure.id, failure)
    _add(report, retry_records(list(found.values()), dash.runtime.dispatcher, dash.failed))
    return report


def retry_matching(dash: Dashboard, flt: JobFilter) -> RetryReport:
    """Every failed job the filter matches that was not retried yet (so that pressing the
    button twice does not queue each job twice) and that failed before the pass started."""
    report = RetryReport()
    matching = dash.failed.count(queue=flt.queue, job_name=flt.job, search=flt.q)
    chunks = retry_pending(
        dash.runtime.dispatcher,
        dash.failed,
        queue=flt.queue,
        job_name=flt.job,
        search=flt.q,
        failed_before=datetime.now(UTC),
    )
    for chunk in chunks:
        _add(report, chunk)
    report.skipped = max(matching - len(report.retried) - len(report.refused), 0)
    return report


def _add(report: RetryReport, chunk: RetriedChunk) -> None:
    report.retried.extend(Retried(r.id, r.uuid, new_id) for r, new_id in chunk.retried)
    report.refused.extend(Refused(r.id, str(error)) for r, error in chunk.refused)


def forget(dash: Dashboard, raw_id: str) -> FailedJobRecord | None:
    """The forgotten row, or None when there was none with that id or uuid."""
    failure = dash.failed.get(raw_id) if len(raw_id) <= MAX_ID_CHARS else None
    if failure is None or not dash.failed.forget(failure.id):
        return None
    return failure
