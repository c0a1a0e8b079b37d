"""The durable failed-job store: what failed, why, and what became of its retry."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Delete,
    Engine,
    Insert,
    delete,
    false,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from core.db import delete_in_chunks, session_factory
from core.models import FailedJob

UPSERT_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}
# Rows per DELETE when pruning: each chunk is a short transaction of its own, so a prune of
# millions holds no lock for long (SQLite's whole-database one above all) and can report.
PRUNE_CHUNK = 1000


@dataclass(frozen=True)
class FailedJobRecord:
    id: int
    uuid: str
    connection: str
    queue: str
    job_name: str
    payload: str
    exception_class: str
    message: str
    traceback: str
    failed_at: datetime
    retry_of: str | None
    retried_by: str | None
    retried_at: datetime | None

    @classmethod
    def from_row(cls, row: FailedJob) -> FailedJobRecord:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class QueueFailures:
    connection: str
    queue: str
    count: int
    last_failed_at: datetime


class FailedJobRepository:
    def __init__(self, engine: Engine) -> None:
        self._dialect = engine.dialect.name
        self._sessions = session_factory(engine)

    def record(
        self,
        *,
        uuid: str,
        connection: str,
        queue: str,
        job_name: str,
        payload: str,
        exception_class: str,
        message: str,
        traceback: str,
        failed_at: datetime | None = None,
        retry_of: str | None = None,
    ) -> int:
        values = dict(
            uuid=uuid,
            connection=connection,
            queue=queue,
            job_name=job_name,
            payload=payload,
            exception_class=exception_class,
            message=message,
            traceback=traceback,
            failed_at=failed_at or datetime.now(UTC),
            retry_of=retry_of,
        )
        with self._sessions.begin() as session:
            return session.execute(self._upsert(values)).scalar_one()

    def _upsert(self, values: dict[str, Any]) -> Insert:
        """A duplicate run of a job can fail too; its uuid keeps one row, the latest failure."""
        if self._dialect not in UPSERT_INSERTS:
            raise RuntimeError(f"failed jobs need SQLite or PostgreSQL, not {self._dialect}")
        insert = UPSERT_INSERTS[self._dialect](FailedJob).values(values)
        changes: dict[str, Any] = {key: insert.excluded[key] for key in values if key != "uuid"}
        changes["retry_of"] = func.coalesce(insert.excluded.retry_of, FailedJob.retry_of)
        upsert = insert.on_conflict_do_update(index_elements=[FailedJob.uuid], set_=changes)
        return upsert.returning(FailedJob.id)

    def remove_by_uuid(self, uuid: str) -> bool:
        return self._delete(delete(FailedJob).where(FailedJob.uuid == uuid)) > 0

    def by_uuids(self, uuids: Sequence[str]) -> dict[str, FailedJobRecord]:
        """The records of these job ids that are in the store, in one query (a page's rows)."""
        if not uuids:
            return {}
        query = select(FailedJob).where(FailedJob.uuid.in_(list(uuids)))
        with self._sessions.begin() as session:
            return {row.uuid: FailedJobRecord.from_row(row) for row in session.scalars(query)}

    def get(self, id_or_uuid: int | str) -> FailedJobRecord | None:
        with self._sessions.begin() as session:
            row = session.scalars(select(FailedJob).where(_identity(id_or_uuid))).first()
            return FailedJobRecord.from_row(row) if row else None

    def list(
        self,
        *,
        queue: str | None = None,
        job_name: str | None = None,
        since: datetime | None = None,
        search: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[FailedJobRecord]:
        """Newest first; ``search`` finds text in the exception's class or message."""
        query = (
            select(FailedJob)
            .where(*_filters(queue, job_name, since, search))
            .order_by(FailedJob.failed_at.desc(), FailedJob.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self._sessions.begin() as session:
            return [FailedJobRecord.from_row(row) for row in session.scalars(query)]

    def count(
        self,
        *,
        queue: str | None = None,
        job_name: str | None = None,
        since: datetime | None = None,
        search: str | None = None,
    ) -> int:
        query = select(func.count(FailedJob.id)).where(*_filters(queue, job_name, since, search))
        with self._sessions.begin() as session:
            return session.execute(query).scalar_one()

    def failures_by_queue(
        self,
        since: datetime,
        until: datetime,
        *,
        connection: str | None = None,
        queue: str | None = None,
    ) -> list[QueueFailures]:
        """Failures with ``since < failed_at <= until``, per connection and queue."""
        query = (
            select(
                FailedJob.connection,
                FailedJob.queue,
                func.count(FailedJob.id),
                func.max(FailedJob.failed_at),
            )
            .where(FailedJob.failed_at > since, FailedJob.failed_at <= until, *_filters(queue))
            .group_by(FailedJob.connection, FailedJob.queue)
            .order_by(FailedJob.connection, FailedJob.queue)
        )
        if connection is not None:
            query = query.where(FailedJob.connection == connection)
        with self._sessions.begin() as session:
            return [QueueFailures(*row) for row in session.execute(query)]

    def pending_retries(
        self,
        *,
        queue: str | None = None,
        job_name: str | None = None,
        search: str | None = None,
        failed_before: datetime | None = None,
        after: int = 0,
        limit: int | None = None,
    ) -> list[FailedJobRecord]:
        """Records not yet retried, in id order from ``after`` on, in one query: a caller
        that retries many takes them a ``limit`` at a time, and one it could not retry is
        not read again. ``failed_before`` leaves out what failed since the caller started."""
        conditions = _filters(queue, job_name, search=search)
        if failed_before is not None:
            conditions.append(FailedJob.failed_at < failed_before)
        query = select(FailedJob).where(
            FailedJob.retried_by.is_(None), FailedJob.id > after, *conditions
        )
        with self._sessions.begin() as session:
            rows = session.scalars(query.order_by(FailedJob.id).limit(limit))
            return [FailedJobRecord.from_row(row) for row in rows]

    def mark_retried(self, id: int, new_uuid: str, at: datetime | None = None) -> None:
        self.mark_retried_many([(id, new_uuid)], at)

    def mark_retried_many(
        self, retries: Sequence[tuple[int, str]], at: datetime | None = None
    ) -> None:
        """Link each failed row (id) to the job id it was retried as, in one transaction."""
        if not retries:
            return
        when = at or datetime.now(UTC)
        changes = [dict(id=id, retried_by=uuid, retried_at=when) for id, uuid in retries]
        with self._sessions.begin() as session:
            session.execute(update(FailedJob), changes)

    def forget(self, id: int) -> bool:
        return self._delete(delete(FailedJob).where(FailedJob.id == id)) > 0

    def flush(self) -> int:
        return self._delete(delete(FailedJob))

    def prune(
        self,
        before: datetime,
        *,
        chunk: int = PRUNE_CHUNK,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Delete the failures older than ``before``, ``chunk`` rows a transaction, calling
        ``progress`` with each chunk's count; returns how many were deleted."""
        oldest = select(FailedJob.id).where(FailedJob.failed_at < before).limit(chunk)
        statement = delete(FailedJob).where(FailedJob.id.in_(oldest.scalar_subquery()))
        return delete_in_chunks(lambda: self._delete(statement), chunk, progress)

    def _delete(self, statement: Delete) -> int:
        with self._sessions.begin() as session:
            return session.execute(statement).rowcount


MAX_ID = 2**31 - 1  # the id column is a 32-bit integer on PostgreSQL


def _identity(id_or_uuid: int | str) -> ColumnElement[bool]:
    if isinstance(id_or_uuid, int) or id_or_uuid.isdecimal():
        number = int(id_or_uuid)
        return FailedJob.id == number if number <= MAX_ID else false()
    return FailedJob.uuid == id_or_uuid


def _filters(
    queue: str | None = None,
    job_name: str | None = None,
    since: datetime | None = None,
    search: str | None = None,
) -> list[ColumnElement[bool]]:
    conditions = []
    if queue is not None:
        conditions.append(FailedJob.queue == queue)
    if job_name is not None:
        conditions.append(FailedJob.job_name == job_name)
    if since is not None:
        conditions.append(FailedJob.failed_at >= since)
    if search:
        conditions.append(
            or_(
                FailedJob.exception_class.icontains(search, autoescape=True),
                FailedJob.message.icontains(search, autoescape=True),
            )
        )
    return conditions
