"""The durable batch store: how many jobs of a batch are left, which failed, and when it ended."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Row,
    Select,
    and_,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from core.db import delete_in_chunks
from core.models import BatchJob, JobBatch, UTCDateTime

COLUMNS = tuple(JobBatch.__table__.c)
log = logging.getLogger("skyline.batches")
# Ids per DELETE ... IN (...): below SQLite's old limit of 999 parameters a statement.
DELETE_CHUNK = 500


class BatchJobStatus(StrEnum):
    COMPLETED = "completed"
    FAILED = "failed"


class BatchNotFound(LookupError):
    pass


@dataclass(frozen=True)
class BatchRecord:
    id: str
    name: str
    total_jobs: int
    pending_jobs: int
    failed_jobs: int
    options: dict[str, Any]
    created_at: datetime
    cancelled_at: datetime | None
    finished_at: datetime | None
    caught_at: datetime | None

    @classmethod
    def from_row(cls, row: Row[Any]) -> BatchRecord:
        values = dict(row._mapping)
        return cls(**values | {"options": _options(values["id"], values["options"])})

    @property
    def processed_jobs(self) -> int:
        return self.total_jobs - self.pending_jobs

    @property
    def progress(self) -> int:
        """Rounded down, so 100 means every job is done; an empty batch has nothing left."""
        if self.total_jobs == 0:
            return 100
        return self.processed_jobs * 100 // self.total_jobs

    @property
    def finished(self) -> bool:
        return self.finished_at is not None

    @property
    def cancelled(self) -> bool:
        return self.cancelled_at is not None


@dataclass(frozen=True)
class BatchTransition:
    """What one success or failure did; each flag is True in exactly one transition."""

    record: BatchRecord
    counted: bool
    all_succeeded: bool
    first_failure: bool
    finished_now: bool


class BatchRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(
        self,
        *,
        id: str,
        name: str,
        total_jobs: int,
        options: Mapping[str, Any],
        created_at: datetime | None = None,
    ) -> BatchRecord:
        values = dict(
            id=id,
            name=name,
            total_jobs=total_jobs,
            pending_jobs=total_jobs,
            failed_jobs=0,
            options=json.dumps(options),
            created_at=created_at or datetime.now(UTC),
        )
        with self._engine.begin() as connection:
            row = connection.execute(insert(JobBatch).values(values).returning(*COLUMNS)).one()
        return BatchRecord.from_row(row)

    def get(self, id: str) -> BatchRecord | None:
        found = self._read(select(*COLUMNS).where(JobBatch.id == id))
        return found[0] if found else None

    def list(
        self, *, limit: int = 50, offset: int = 0, search: str | None = None
    ) -> list[BatchRecord]:
        query = (
            select(*COLUMNS)
            .where(*_matching(search))
            .order_by(JobBatch.created_at.desc(), JobBatch.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return self._read(query)

    def count(self, search: str | None = None) -> int:
        query = select(func.count()).select_from(JobBatch).where(*_matching(search))
        with self._engine.connect() as connection:
            return connection.execute(query).scalar_one()

    def add_jobs(self, id: str, count: int) -> BatchRecord:
        if count < 0:
            raise ValueError(f"cannot add {count} jobs to batch {id}")
        changes: dict[str, Any] = dict(
            total_jobs=JobBatch.total_jobs + count, pending_jobs=JobBatch.pending_jobs + count
        )
        if count:
            changes["finished_at"] = None
        return self._update(id, changes)

    def record_success(
        self, id: str, job_id: str, *, at: datetime | None = None
    ) -> BatchTransition:
        at = _now(at)
        with self._locked(id) as (connection, before):
            previous = _job_status(connection, id, job_id)
            if previous == BatchJobStatus.COMPLETED:
                return _unchanged(before)
            _save_job(connection, id, job_id, BatchJobStatus.COMPLETED, previous, at)
            failed = -1 if previous == BatchJobStatus.FAILED else 0
            after = _count(connection, id, pending=-1, failed=failed, at=at)
        return _transition(before, after)

    def record_failure(
        self, id: str, job_id: str, *, at: datetime | None = None
    ) -> BatchTransition:
        """A job that has completed stays completed: a failing duplicate run changes nothing."""
        at = _now(at)
        with self._locked(id) as (connection, before):
            if _job_status(connection, id, job_id) is not None:
                return _unchanged(before)
            _save_job(connection, id, job_id, BatchJobStatus.FAILED, None, at)
            after = _count(connection, id, pending=0, failed=1, at=at, catch=True)
        return _transition(before, after)

    def cancel(self, id: str, *, at: datetime | None = None) -> BatchRecord:
        cancelled_at = func.coalesce(JobBatch.cancelled_at, literal(_now(at), UTCDateTime()))
        return self._update(id, {"cancelled_at": cancelled_at})

    def failed_job_ids(self, id: str) -> list[str]:
        return self.job_ids(id, BatchJobStatus.FAILED)

    def job_ids(
        self,
        id: str,
        status: BatchJobStatus | str | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[str]:
        """In the order their latest state was recorded; ``limit`` and ``offset`` page them."""
        query = select(BatchJob.job_id).where(BatchJob.batch_id == id)
        if status is not None:
            query = query.where(BatchJob.status == BatchJobStatus(status).value)
        query = query.order_by(BatchJob.updated_at, BatchJob.job_id).limit(limit).offset(offset)
        with self._engine.connect() as connection:
            return list(connection.scalars(query))

    def delete(self, id: str) -> bool:
        return self._delete(JobBatch.id == id) > 0

    def prune(
        self,
        *,
        finished_before: datetime,
        unfinished_before: datetime | None = None,
        cancelled_before: datetime | None = None,
        chunk: int = DELETE_CHUNK,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Laravel's queue:prune-batches; each age is strict, like the failed store's prune.

        Unfinished batches are aged by created_at (they have nothing else), cancelled ones
        by cancelled_at, so a batch cancelled a minute ago is not pruned for being old.
        ``chunk`` batches go per transaction, so a big prune holds no lock for long;
        ``progress`` gets each chunk's count. Returns how many were deleted.
        """
        conditions = [_before(JobBatch.finished_at, finished_before)]
        if unfinished_before is not None:
            unfinished = and_(
                JobBatch.finished_at.is_(None), JobBatch.created_at < unfinished_before
            )
            conditions.append(unfinished)
        if cancelled_before is not None:
            conditions.append(_before(JobBatch.cancelled_at, cancelled_before))
        oldest = select(JobBatch.id).where(or_(*conditions)).limit(chunk)
        chosen = JobBatch.id.in_(oldest.scalar_subquery())
        return delete_in_chunks(lambda: self._delete(chosen), chunk, progress)

    @contextmanager
    def _locked(self, id: str) -> Iterator[tuple[Connection, BatchRecord]]:
        """Hold the batch's write lock before reading what decides a transition.

        SQLite: BEGIN IMMEDIATE takes the database's write lock at once, waiting out the
        busy timeout; a transaction that reads first and writes later fails "database is
        locked" without waiting when another process wrote in between.
        PostgreSQL: the row lock serialises writers of one batch. NO KEY UPDATE, because
        the key never changes, and it does not block the KEY SHARE that inserting a job
        row takes on its batch through the foreign key.
        """
        with self._engine.begin() as connection:
            if connection.dialect.name == "sqlite":
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            query = select(*COLUMNS).where(JobBatch.id == id).with_for_update(key_share=True)
            row = connection.execute(query).first()
            if row is None:
                raise BatchNotFound(id)
            yield connection, BatchRecord.from_row(row)

    def _update(self, id: str, changes: dict[str, Any]) -> BatchRecord:
        statement = update(JobBatch).where(JobBatch.id == id).values(changes)
        with self._engine.begin() as connection:
            row = connection.execute(statement.returning(*COLUMNS)).first()
        if row is None:
            raise BatchNotFound(id)
        return BatchRecord.from_row(row)

    def _delete(self, condition: ColumnElement[bool]) -> int:
        """Batches first (that takes their locks), then their jobs: SQLite does not
        enforce foreign keys, so its cascade happens here; PostgreSQL's already did."""
        with self._engine.begin() as connection:
            deleted = delete(JobBatch).where(condition).returning(JobBatch.id)
            ids = connection.scalars(deleted).all()
            for start in range(0, len(ids), DELETE_CHUNK):
                chunk = ids[start : start + DELETE_CHUNK]
                connection.execute(delete(BatchJob).where(BatchJob.batch_id.in_(chunk)))
        return len(ids)

    def _read(self, query: Select[Any]) -> list[BatchRecord]:
        with self._engine.connect() as connection:
            return [BatchRecord.from_row(row) for row in connection.execute(query)]


def _options(batch_id: str, text: str) -> dict[str, Any]:
    """Options that do not read (a hand edited the row) are dropped with a warning, so one
    row cannot break every list of batches."""
    try:
        options = json.loads(text)
    except ValueError:
        options = None
    if not isinstance(options, dict):
        log.warning("batch %s has unreadable options %.200r; ignoring them", batch_id, text)
        return {}
    return options


def _now(at: datetime | None) -> datetime:
    return at or datetime.now(UTC)


def _job_status(connection: Connection, batch_id: str, job_id: str) -> str | None:
    query = select(BatchJob.status).where(BatchJob.batch_id == batch_id, BatchJob.job_id == job_id)
    return connection.scalar(query)


def _save_job(
    connection: Connection,
    batch_id: str,
    job_id: str,
    status: BatchJobStatus,
    previous: str | None,
    at: datetime,
) -> None:
    values = dict(status=status.value, updated_at=at)
    if previous is None:
        connection.execute(insert(BatchJob).values(batch_id=batch_id, job_id=job_id, **values))
        return
    key = and_(BatchJob.batch_id == batch_id, BatchJob.job_id == job_id)
    connection.execute(update(BatchJob).where(key).values(values))


def _count(
    connection: Connection, id: str, *, pending: int, failed: int, at: datetime, catch: bool = False
) -> BatchRecord:
    """The counters move in SQL; the change that leaves pending equal to failed finishes it."""
    now = literal(at, UTCDateTime())
    done = and_(
        JobBatch.finished_at.is_(None),
        JobBatch.pending_jobs + pending == JobBatch.failed_jobs + failed,
    )
    changes: dict[str, Any] = dict(
        pending_jobs=JobBatch.pending_jobs + pending,
        failed_jobs=JobBatch.failed_jobs + failed,
        finished_at=case((done, now), else_=JobBatch.finished_at),
    )
    if catch:
        changes["caught_at"] = func.coalesce(JobBatch.caught_at, now)
    statement = update(JobBatch).where(JobBatch.id == id).values(changes).returning(*COLUMNS)
    return BatchRecord.from_row(connection.execute(statement).one())


def _transition(before: BatchRecord, after: BatchRecord) -> BatchTransition:
    return BatchTransition(
        record=after,
        counted=True,
        all_succeeded=after.pending_jobs == 0 < before.pending_jobs,
        first_failure=before.caught_at is None and after.caught_at is not None,
        finished_now=before.finished_at is None and after.finished_at is not None,
    )


def _unchanged(record: BatchRecord) -> BatchTransition:
    return BatchTransition(
        record, counted=False, all_succeeded=False, first_failure=False, finished_now=False
    )


def _before(column: Any, moment: datetime) -> ColumnElement[bool]:
    return and_(column.is_not(None), column < moment)


def _matching(search: str | None) -> list[ColumnElement[bool]]:
    """Name anywhere (any case), or the start of the id as the dashboard shows it."""
    if not search:
        return []
    by_name = JobBatch.name.icontains(search, autoescape=True)
    return [or_(by_name, JobBatch.id.startswith(search, autoescape=True))]
