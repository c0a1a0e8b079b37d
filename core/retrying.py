"""Retrying failed jobs: the original job, verified again, under a new id."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

from core.dispatcher import Dispatcher
from core.failed import FailedJobRecord, FailedJobRepository
from core.payload import PayloadError, new_job_id, now_ms, parse

RETRY_CHUNK = 200  # failed-job ids read per query when retrying everything


class RetryError(Exception):
    """A failed job that cannot be put back (unreadable or unsigned payload)."""


def retry_failed(
    record: FailedJobRecord, dispatcher: Dispatcher, store: FailedJobRepository
) -> str:
    """Queue the failed job again with attempts reset; returns the new job id."""
    keys = dispatcher.settings.signing_keys()
    try:
        original = parse(record.payload, keys)
    except PayloadError as exc:
        raise RetryError(f"failed job {record.id} cannot be retried: {exc}") from None
    body = json.loads(original.body_json)
    body.update(id=new_job_id(), retry_of=original.id, pushed_at=now_ms())
    dispatcher.push_signed(body["connection"], [(body, 0.0)], keys[0])
    store.mark_retried(record.id, body["id"])
    return body["id"]


def pending_retries(
    store: FailedJobRepository,
    *,
    queue: str | None = None,
    failed_before: datetime,
    chunk: int = RETRY_CHUNK,
) -> Iterator[FailedJobRecord]:
    """Failed jobs not yet retried, read ``chunk`` ids at a time rather than all at once.

    Only those that failed before ``failed_before`` (when the caller started): with workers
    running, a retried job that fails again is a new row, and would otherwise be retried
    again in the same pass, for as long as the pass keeps up with the workers.
    """
    after = 0
    while ids := store.pending_retry_ids(queue=queue, after=after, limit=chunk):
        for failed_id in ids:
            record = store.get(failed_id)
            if record is not None and record.failed_at < failed_before:
                yield record
        after = ids[-1]
