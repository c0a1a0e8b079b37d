"""Retrying failed jobs: the original job, verified again, under a new id."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.dispatcher import Dispatcher
from core.failed import FailedJobRecord, FailedJobRepository
from core.payload import PayloadError, new_job_id, now_ms, parse

RETRY_CHUNK = 200  # failed jobs read, pushed and marked together when retrying many
MAX_RETRY_HOPS = 100  # retries of retries followed before giving up on a job's newest failure


class RetryError(Exception):
    """A failed job that cannot be put back (unreadable or unsigned payload)."""


@dataclass
class RetriedChunk:
    """What became of some failed jobs: each retried one with its new job id, and each
    one that could not be retried with the reason (that row is kept, not retried)."""

    retried: list[tuple[FailedJobRecord, str]] = field(default_factory=list)
    refused: list[tuple[FailedJobRecord, RetryError]] = field(default_factory=list)


def retry_failed(
    record: FailedJobRecord, dispatcher: Dispatcher, store: FailedJobRepository
) -> str:
    """Queue the failed job again with attempts reset; returns the new job id."""
    outcome = retry_records([record], dispatcher, store)
    if outcome.refused:
        raise outcome.refused[0][1]
    return outcome.retried[0][1]


def retry_records(
    records: Sequence[FailedJobRecord], dispatcher: Dispatcher, store: FailedJobRepository
) -> RetriedChunk:
    """Queue these failed jobs again: one Redis round trip per connection, then one SQL
    transaction marking them all retried.

    Pushed first, marked after: a crash between the two leaves these rows unmarked, so the
    next pass retries them again (this chunk at most, twice) rather than losing any.
    """
    keys = dispatcher.settings.signing_keys()
    outcome = RetriedChunk()
    bodies: dict[str, list[tuple[dict[str, Any], float]]] = defaultdict(list)
    for record in records:
        try:
            original = parse(record.payload, keys)
        except PayloadError as exc:
            error = RetryError(f"failed job {record.id} cannot be retried: {exc}")
            outcome.refused.append((record, error))
            continue
        body = json.loads(original.body_json)
        body.update(id=new_job_id(), retry_of=original.id, pushed_at=now_ms())
        bodies[body["connection"]].append((body, 0.0))
        outcome.retried.append((record, body["id"]))
    for connection, pushable in bodies.items():
        dispatcher.push_signed(connection, pushable, keys[0])
    store.mark_retried_many([(record.id, new_id) for record, new_id in outcome.retried])
    return outcome


def retry_pending(
    dispatcher: Dispatcher,
    store: FailedJobRepository,
    *,
    failed_before: datetime,
    queue: str | None = None,
    job_name: str | None = None,
    search: str | None = None,
    chunk: int | None = None,
) -> Iterator[RetriedChunk]:
    """Retry every failed job the filters match that was not retried yet, ``chunk``
    (``RETRY_CHUNK``) at a time: one query, one push, one commit each. Yields each chunk's
    outcome as it is done.

    Only those that failed before ``failed_before`` (when the caller started): with workers
    running, a retried job that fails again is a new row, and would otherwise be retried
    again in the same pass, for as long as the pass keeps up with the workers.
    """
    size, after = chunk or RETRY_CHUNK, 0
    while records := store.pending_retries(
        queue=queue,
        job_name=job_name,
        search=search,
        failed_before=failed_before,
        after=after,
        limit=size,
    ):
        yield retry_records(records, dispatcher, store)
        after = records[-1].id


@dataclass
class BatchRetry:
    """What became of a batch's failed jobs when the batch was retried."""

    retried: list[str] = field(default_factory=list)  # the new jobs' ids
    in_flight: list[str] = field(default_factory=list)  # retried already, and not failed again
    missing: list[str] = field(default_factory=list)  # no longer in the failed store
    problems: list[str] = field(default_factory=list)


def retry_batch_failures(
    job_ids: Sequence[str], dispatcher: Dispatcher, store: FailedJobRepository
) -> BatchRetry:
    """Each of a batch's failed jobs again, from its newest failure. A job retried already
    and not failed since is left alone, so retrying a batch twice runs no job twice. Pushed
    and marked ``RETRY_CHUNK`` at a time."""
    done, due = BatchRetry(), []
    for job_id in job_ids:
        failure = latest_failure(store, job_id)
        if failure is None:
            done.missing.append(job_id)
        elif failure.retried_by is not None:
            done.in_flight.append(job_id)
        else:
            due.append(failure)
    for first in range(0, len(due), RETRY_CHUNK):
        chunk = retry_records(due[first : first + RETRY_CHUNK], dispatcher, store)
        done.retried += [new_id for _, new_id in chunk.retried]
        done.problems += [str(error) for _, error in chunk.refused]
    return done


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
