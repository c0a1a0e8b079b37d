"""Metric snapshots: each interval's figures per job name and per queue, kept in SQL for charts."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import Engine, Float, Integer, Row, case, delete, func, insert, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from core.metrics import MetricTotals
from core.models import MetricSnapshot

COLUMNS = tuple(MetricSnapshot.__table__.c)


class MetricKind(StrEnum):
    JOB = "job"
    QUEUE = "queue"


class IntervalCounters(Protocol):
    """core.metrics.MetricsRepository, or counters a test holds in memory."""

    def take_interval(self) -> Sequence[MetricTotals]: ...


@dataclass(frozen=True)
class Snapshot:
    kind: str
    name: str
    taken_at: datetime
    interval_s: float
    throughput: float  # jobs per minute
    runtime_avg_ms: float
    runtime_max_ms: float
    wait_p50_ms: float
    wait_p95_ms: float
    wait_max_ms: float
    processed: int
    failed: int
    pushed: int
    id: int | None = None

    @classmethod
    def from_row(cls, row: Row[Any]) -> Snapshot:
        return cls(**row._mapping)

    @classmethod
    def of(cls, totals: MetricTotals, taken_at: datetime, interval_s: float) -> Snapshot:
        return cls(
            kind=MetricKind(totals.kind).value,
            name=totals.name,
            taken_at=taken_at,
            interval_s=interval_s,
            throughput=totals.processed * 60 / interval_s,
            runtime_avg_ms=totals.runtime_ms_total / totals.processed if totals.processed else 0.0,
            runtime_max_ms=totals.runtime_ms_max,
            wait_p50_ms=totals.wait_percentile(50),
            wait_p95_ms=totals.wait_percentile(95),
            wait_max_ms=highest_wait_ms(totals.wait_buckets),
            processed=totals.processed,
            failed=totals.failed,
            pushed=totals.pushed,
        )

    def values(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "id"}


def highest_wait_ms(buckets: Mapping[float, int]) -> float:
    """The upper bound of the highest bucket that counted a wait; for the open last
    bucket, the bound below it, since SQL and JSON have no infinity to chart."""
    bounds = sorted(buckets)
    counted = [bound for bound in bounds if buckets[bound]]
    if not counted:
        return 0.0
    if math.isfinite(counted[-1]):
        return float(counted[-1])
    finite = [bound for bound in bounds if math.isfinite(bound)]
    return float(finite[-1]) if finite else 0.0


@dataclass(frozen=True)
class Bucket:
    """The snapshots of one stretch of a series, summed up by the database: a chart of
    a week needs a few hundred of these, not the two thousand rows they stand for."""

    first: datetime
    last: datetime
    snapshots: int
    means: dict[str, float]  # by field name
    peaks: dict[str, float]
    processed: int
    failed: int


class epoch_seconds(FunctionElement[float]):
    """A timestamp column as seconds since 1970: SQLite keeps text, PostgreSQL a timestamp."""

    type = Float()
    inherit_cache = True


@compiles(epoch_seconds)
def _epoch_seconds(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"extract(epoch from {compiler.process(element.clauses, **kw)})"


@compiles(epoch_seconds, "sqlite")
def _epoch_seconds_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


class whole_part(FunctionElement[int]):
    """The integer part of a number that is never negative (SQLite has no ``floor``, and a
    cast to integer rounds on PostgreSQL)."""

    type = Integer()
    inherit_cache = True


@compiles(whole_part)
def _whole_part(element: whole_part, compiler: SQLCompiler, **kw: Any) -> str:
    return f"floor({compiler.process(element.clauses, **kw)})"


@compiles(whole_part, "sqlite")
def _whole_part_sqlite(element: whole_part, compiler: SQLCompiler, **kw: Any) -> str:
    return f"cast({compiler.process(element.clauses, **kw)} as integer)"


def _bucket(row: Row[Any], fields: Sequence[str]) -> Bucket:
    _, first, last, snapshots, processed, failed, *figures = row
    means, peaks = figures[: len(fields)], figures[len(fields) :]
    return Bucket(
        first=first,
        last=last,
        snapshots=snapshots,
        means=dict(zip(fields, map(float, means), strict=True)),
        peaks=dict(zip(fields, map(float, peaks), strict=True)),
        processed=int(processed),
        failed=int(failed),
    )


class SnapshotRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(self, snapshots: Sequence[Snapshot]) -> None:
        if not snapshots:
            return
        with self._engine.begin() as connection:
            connection.execute(insert(MetricSnapshot), [s.values() for s in snapshots])

    def series(
        self,
        kind: MetricKind | str,
        name: str,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[Snapshot]:
        """Oldest first, ``since <= taken_at < until``."""
        query = select(*COLUMNS).where(
            MetricSnapshot.kind == MetricKind(kind).value, MetricSnapshot.name == name
        )
        if since is not None:
            query = query.where(MetricSnapshot.taken_at >= since)
        if until is not None:
            query = query.where(MetricSnapshot.taken_at < until)
        return self._read(query.order_by(MetricSnapshot.taken_at, MetricSnapshot.id))

    def buckets(
        self,
        kind: MetricKind | str,
        name: str,
        since: datetime,
        until: datetime,
        fields: Sequence[str],
        count: int,
    ) -> list[Bucket]:
        """The series over ``since <= taken_at < until`` cut into ``count`` equal stretches of
        time, oldest first, leaving out stretches without snapshots."""
        width_s = (until - since).total_seconds() / count
        offset = (epoch_seconds(MetricSnapshot.taken_at) - since.timestamp()) / width_s
        index = whole_part(offset)
        bucket = case((index >= count, count - 1), else_=index).label("bucket")
        columns = [getattr(MetricSnapshot, field) for field in fields]
        query = (
            select(
                bucket,
                func.min(MetricSnapshot.taken_at),
                func.max(MetricSnapshot.taken_at),
                func.count(),
                func.sum(MetricSnapshot.processed),
                func.sum(MetricSnapshot.failed),
                *(func.avg(column) for column in columns),
                *(func.max(column) for column in columns),
            )
            .where(
                MetricSnapshot.kind == MetricKind(kind).value,
                MetricSnapshot.name == name,
                MetricSnapshot.taken_at >= since,
                MetricSnapshot.taken_at < until,
            )
            .group_by(bucket)
            .order_by(bucket)
        )
        with self._engine.connect() as connection:
            rows = connection.execute(query).all()
        return [_bucket(row, fields) for row in rows]

    def names(self, kind: MetricKind | str) -> list[str]:
        query = (
            select(MetricSnapshot.name)
            .where(MetricSnapshot.kind == MetricKind(kind).value)
            .distinct()
            .order_by(MetricSnapshot.name)
        )
        with self._engine.connect() as connection:
            return list(connection.scalars(query))

    def latest(self, kind: MetricKind | str) -> list[Snapshot]:
        """Every name's row of the newest snapshot that holds this kind, by name."""
        kind = MetricKind(kind).value
        newest = select(func.max(MetricSnapshot.taken_at)).where(MetricSnapshot.kind == kind)
        query = select(*COLUMNS).where(
            MetricSnapshot.kind == kind, MetricSnapshot.taken_at == newest.scalar_subquery()
        )
        return self._read(query.order_by(MetricSnapshot.name))

    def last_taken_at(self) -> datetime | None:
        with self._engine.connect() as connection:
            return connection.scalar(select(func.max(MetricSnapshot.taken_at)))

    def prune(self, before: datetime) -> int:
        """Strict, like the failed store's prune: a row taken exactly at ``before`` stays."""
        statement = delete(MetricSnapshot).where(MetricSnapshot.taken_at < before)
        with self._engine.begin() as connection:
            return connection.execute(statement).rowcount

    def _read(self, query: Any) -> list[Snapshot]:
        with self._engine.connect() as connection:
            return [Snapshot.from_row(row) for row in connection.execute(query)]


def take_snapshot(
    metrics: IntervalCounters,
    snapshots: SnapshotRepository,
    now: datetime,
    *,
    interval_s: float,
    previous: datetime | None = None,
) -> list[Snapshot]:
    """Store one row per job name and per queue for the interval that ends ``now``.

    The counters ran since the ``previous`` snapshot, wherever it was taken (by hand
    or on schedule); the nominal ``interval_s`` serves when none is known.
    """
    if previous is not None and previous < now:
        interval_s = (now - previous).total_seconds()
    taken = [Snapshot.of(totals, now, interval_s) for totals in metrics.take_interval()]
    snapshots.record(taken)
    return taken
