"""Retrying failed jobs: the original job, verified again, under a new id."""

from __future__ import annotations

import json

from core.dispatcher import Dispatcher
from core.failed import FailedJobRecord, FailedJobRepository
from core.payload import PayloadError, new_job_id, now_ms, parse


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
