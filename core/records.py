"""Job records for the dashboard: one Redis hash per job, and indexes of job ids by time.

Each write is named after a lifecycle event and adds commands to a pipeline the caller
passes in, so a record rides in the round trip of the queue operation it follows. Every
record has a TTL and every index is trimmed by age, so memory stays bounded at any load.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

import redis
from redis.client import Pipeline

from core.job_record import JobIndex, JobRecord, JobStatus, score_at
from core.keys import Keys
from core.payload import Payload, now_ms
from core.pipelines import call, register
from core.record_pages import Page, scan_page
from core.settings import RecordSettings

CHUNK = 1000  # jobs per script call, so no one write blocks Redis for long
EXCEPTION_CHARS = 2000


FINISHED_INDEXES = (
    JobIndex.PENDING,
    JobIndex.COMPLETED,
    JobIndex.SILENCED,
    JobIndex.FAILED,
    JobIndex.RECENT_FAILED,
)  # the order record_finished.lua expects


# The statuses each list shows, for reading a monitored tag's own index instead.
INDEX_STATUSES = {
    JobIndex.RECENT: frozenset(JobStatus),
    JobIndex.PENDING: frozenset({JobStatus.PENDING, JobStatus.RESERVED, JobStatus.RELEASED}),
    JobIndex.COMPLETED: frozenset({JobStatus.COMPLETED}),
    JobIndex.SILENCED: frozenset({JobStatus.SILENCED}),
    JobIndex.FAILED: frozenset({JobStatus.FAILED}),
    JobIndex.RECENT_FAILED: frozenset({JobStatus.FAILED}),
}


@dataclass(frozen=True, slots=True)
class PushedJob:
    body: dict[str, Any]
    payload: str
    available_at: int


Ending = list[Any]  # one record's arguments for record_finished.lua


class JobRecordRepository:
    def __init__(self, client: redis.Redis, keys: Keys, settings: RecordSettings) -> None:
        self.client = client
        self.keys = keys
        self.settings = settings
        self.windows_s = {
            JobIndex.RECENT: settings.recent_s,
            JobIndex.PENDING: settings.pending_s,
            JobIndex.COMPLETED: settings.completed_s,
            JobIndex.SILENCED: settings.silenced_s,
            JobIndex.FAILED: settings.failed_s,
            JobIndex.RECENT_FAILED: settings.recent_failed_s,
            JobIndex.MONITORED: settings.monitored_s,
        }
        self._index = {index: keys.job_index(index) for index in JobIndex}
        self._pushed = register(client, "record_pushed")
        self._reserved = register(client, "record_reserved")
        self._finished = register(client, "record_finished")
        self._retried = register(client, "record_retried")

    # --- lifecycle writes -------------------------------------------------------------

    def pushed(self, pipe: Pipeline, jobs: list[PushedJob]) -> None:
        for first in range(0, len(jobs), CHUNK):
            self._push_chunk(pipe, jobs[first : first + CHUNK])

    def _push_chunk(self, pipe: Pipeline, jobs: list[PushedJob]) -> None:
        tags = sorted({tag for job in jobs for tag in job.body.get("tags") or ()})
        keys = [self._index[JobIndex.RECENT], self._index[JobIndex.PENDING]]
        keys += [self.keys.monitoring(), *(self.keys.job_record(j.body["id"]) for j in jobs)]
        keys += [self.keys.monitored_jobs(tag) for tag in tags]
        now = now_ms()
        args: list[Any] = [len(jobs), now, self.settings.monitored_s, *tags]
        for job in jobs:
            body, available_at = job.body, job.available_at
            # From now, when the TTL starts: pushed_at is when the body was made, which can
            # be a millisecond earlier, and would round a ready job's wait up to a second.
            due_in_s = max(-(-(available_at - now) // 1000), 0)
            tag_list = json.dumps(body["tags"]) if body.get("tags") else ""
            args += [body["id"], body["pushed_at"], available_at]
            args += [self.settings.pending_s + due_in_s, job.payload, tag_list]
            args.append(body.get("retry_of") or "")
        call(pipe, self._pushed, keys, args)

    def retried(self, pipe: Pipeline, job_id: str, retry_id: str) -> None:
        call(pipe, self._retried, [self.keys.job_record(job_id)], [retry_id])

    def reserved(self, pipe: Pipeline, payload: Payload) -> None:
        args = [payload.attempts, payload.reserved_at, self.settings.pending_s]
        args.append(self.settings.monitored_s)
        call(pipe, self._reserved, [self.keys.job_record(payload.id)], args)

    def completion(self, payload: Payload, *, at: int, runtime_ms: float, silenced: bool) -> Ending:
        """A completed attempt, for ``completed`` to write with others: a few values, so
        that holding many until then costs little."""
        if silenced:
            return _ending(payload, JobStatus.SILENCED, at, self.settings.silenced_s, runtime_ms)
        return _ending(payload, JobStatus.COMPLETED, at, self.settings.completed_s, runtime_ms)

    def completed(self, pipe: Pipeline, completions: list[Ending]) -> None:
        self._finish(pipe, completions)

    def failed(
        self, pipe: Pipeline, payload: Payload, *, at: int, runtime_ms: float, exception: str
    ) -> None:
        ttl_s = max(self.settings.failed_s, self.settings.recent_failed_s)
        summary = exception[:EXCEPTION_CHARS]
        ending = _ending(payload, JobStatus.FAILED, at, ttl_s, runtime_ms, exception=summary)
        self._finish(pipe, [ending])

    def released(
        self,
        pipe: Pipeline,
        payload: Payload,
        *,
        available_at: int,
        attempts: int,
        runtime_ms: float,
    ) -> None:
        """``attempts`` is what the job will carry when it comes back (a held-back job gives
        its attempt back), so the next reservation is seen as newer."""
        ttl_s = self.settings.pending_s + max(-(-(available_at - now_ms()) // 1000), 0)
        status = JobStatus.RELEASED
        ending = _ending(payload, status, available_at, ttl_s, runtime_ms, attempts=attempts)
        self._finish(pipe, [ending])

    def _finish(self, pipe: Pipeline, endings: list[Ending]) -> None:
        for first in range(0, len(endings), CHUNK):
            chunk = endings[first : first + CHUNK]
            keys = [self._index[index] for index in FINISHED_INDEXES]
            keys += [self.keys.job_record(ending[0]) for ending in chunk]
            call(pipe, self._finished, keys, [self.settings.monitored_s, *itertools.chain(*chunk)])

    def trim(self, pipe: Pipeline, now: int) -> None:
        """Drop index entries older than their window; the records expire by themselves."""
        for index in JobIndex:
            if index is not JobIndex.MONITORED:  # trimmed by the pushes that fill them
                oldest = score_at(now - self.windows_s[index] * 1000)
                pipe.zremrangebyscore(self._index[index], "-inf", f"({oldest}")

    # --- monitoring -------------------------------------------------------------------

    def monitor(self, tag: str) -> None:
        self.client.sadd(self.keys.monitoring(), tag)

    def unmonitor(self, tag: str) -> None:
        """Stop keeping the tag's jobs; their records expire within the monitored window."""
        pipe = self.client.pipeline(transaction=True)
        pipe.srem(self.keys.monitoring(), tag).delete(self.keys.monitored_jobs(tag))
        pipe.execute()

    def monitored(self) -> dict[str, int]:
        """Monitored tags and how many jobs each keeps now."""
        tags = sorted(t.decode() for t in self.client.smembers(self.keys.monitoring()))
        oldest = score_at(now_ms() - self.settings.monitored_s * 1000)
        pipe = self.client.pipeline(transaction=False)
        for tag in tags:
            pipe.zcount(self.keys.monitored_jobs(tag), oldest, "+inf")
        return dict(zip(tags, pipe.execute(), strict=True))

    # --- reading ----------------------------------------------------------------------

    def get(self, job_id: str) -> JobRecord | None:
        """None when the record has expired, or cannot be read."""
        return _read(self.client.hgetall(self.keys.job_record(job_id)))

    def get_many(self, job_ids: list[str]) -> list[JobRecord | None]:
        """Several records in one round trip, in the order asked."""
        return self._load([job_id.encode() for job_id in job_ids])

    def counts(self) -> dict[JobIndex, int]:
        """Jobs in each index within its window (the trim may not have run yet)."""
        now = now_ms()
        indexes = [index for index in JobIndex if index is not JobIndex.MONITORED]
        pipe = self.client.pipeline(transaction=False)
        for index in indexes:
            oldest = score_at(now - self.windows_s[index] * 1000)
            pipe.zcount(self._index[index], oldest, "+inf")
        return dict(zip(indexes, pipe.execute(), strict=True))

    def page(
        self,
        index: JobIndex,
        *,
        before: int | None = None,
        limit: int = 50,
        queue: str | None = None,
        job_name: str | None = None,
        tag: str | None = None,
    ) -> Page[JobRecord]:
        """Newest first, from ``before`` (a score that a previous page returned) down.

        For ``JobIndex.MONITORED`` the tag names the index; elsewhere it filters.
        """
        index = JobIndex(index)
        statuses: frozenset[JobStatus] | None = None
        if index is JobIndex.MONITORED:
            if tag is None:
                raise ValueError("the monitored index needs a tag")
            key, tag = self.keys.monitored_jobs(tag), None
        elif tag is not None and self.client.sismember(self.keys.monitoring(), tag):
            # A monitored tag has an index of its own: reading it for a rare tag beats
            # scanning a whole list. It is ordered by push time and kept for longer.
            key, statuses, tag = self.keys.monitored_jobs(tag), INDEX_STATUSES[index], None
            index = JobIndex.MONITORED
        else:
            key = self._index[index]

        def wanted(record: JobRecord) -> bool:
            return (
                (queue is None or record.queue == queue)
                and (job_name is None or record.name == job_name)
                and (tag is None or tag in record.tags)
                and (statuses is None or record.status in statuses)
            )

        oldest = score_at(now_ms() - self.windows_s[index] * 1000)
        return scan_page(self.client, key, oldest, before, limit, self._load, wanted)

    def _load(self, ids: list[bytes]) -> list[JobRecord | None]:
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(self.keys.job_record(job_id.decode()))
        return [_read(fields) for fields in pipe.execute()]


def _read(fields: dict[bytes, bytes]) -> JobRecord | None:
    """A record that another version or a hand edit left malformed reads as missing, so
    one bad hash cannot break a page that lists it."""
    try:
        return JobRecord.from_hash(fields)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _ending(
    payload: Payload,
    status: JobStatus,
    at: int,
    ttl_s: int,
    runtime_ms: float,
    *,
    attempts: int | None = None,
    exception: str = "",
) -> Ending:
    attempts = payload.attempts if attempts is None else attempts
    tagged = 1 if payload.body.get("tags") else ""
    return [
        payload.id,
        status,
        at,
        ttl_s,
        attempts,
        payload.reserved_at,
        runtime_ms,
        exception,
        tagged,
    ]
