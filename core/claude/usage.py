"""What the AI usage page adds up from the Claude request store, in SQL.

The database buckets the rows (by minute, by day) and sums them, so a page reads a few
dozen rows however many requests a window holds. Requests count when they were created;
tokens and cost when they were answered, which is when the API spent them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Engine,
    Integer,
    cast,
    func,
    literal_column,
    select,
)

from core.claude.records import ClaudeRequestRecord, Status
from core.db import session_factory
from core.models import ClaudeRequest

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SLOWEST = 10


@dataclass(frozen=True)
class Totals:
    """The requests created in a window: by status, and what they cost and met on the way."""

    statuses: dict[Status, int]
    cached: int  # answered from the response cache
    cost_usd: float
    times_rate_limited: int  # 429 answers
    times_overloaded: int  # 529 answers

    @property
    def requests(self) -> int:
        return sum(self.statuses.values())

    @property
    def cache_hit_rate(self) -> float | None:
        """Of the completed requests, the share the cache answered; None before any."""
        completed = self.statuses[Status.COMPLETED]
        return self.cached / completed if completed else None


@dataclass
class TokenUse:
    """One model's answered requests in one bucket (or a whole window)."""

    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_creation_input_tokens
            + self.cache_read_input_tokens
        )

    def add(self, other: TokenUse) -> None:
        self.requests += other.requests
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_creation_input_tokens += other.cache_creation_input_tokens
        self.cache_read_input_tokens += other.cache_read_input_tokens
        self.cost_usd += other.cost_usd


class ClaudeUsageRepository:
    """Aggregates over ``[since, until)``; ``owner`` limits them to one owner's requests."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)
        self._dialect = engine.dialect.name

    def totals(self, since: datetime, owner: str | None = None) -> Totals:
        query = (
            select(
                ClaudeRequest.status,
                func.count(),
                func.sum(cast(ClaudeRequest.cached, Integer)),
                func.sum(ClaudeRequest.cost_usd),
                func.sum(ClaudeRequest.times_rate_limited),
                func.sum(ClaudeRequest.times_overloaded),
            )
            .where(ClaudeRequest.created_at >= since, *_scope(owner))
            .group_by(ClaudeRequest.status)
        )
        statuses = dict.fromkeys(Status, 0)
        sums = [0, 0.0, 0, 0]
        with self._sessions.begin() as session:
            for status, count, *row in session.execute(query):
                statuses[Status(status)] = count
                sums = [total + (value or 0) for total, value in zip(sums, row, strict=True)]
        return Totals(statuses, int(sums[0]), float(sums[1]), int(sums[2]), int(sums[3]))

    def requests_per_bucket(
        self, since: datetime, until: datetime, bucket_s: int, owner: str | None = None
    ) -> dict[datetime, int]:
        """Requests created in each bucket (buckets start at multiples of ``bucket_s`` since
        the epoch: whole minutes, UTC days); empty buckets are left out."""
        bucket = self._bucket(ClaudeRequest.created_at, bucket_s)
        query = (
            select(bucket, func.count())
            .where(
                ClaudeRequest.created_at >= since, ClaudeRequest.created_at < until, *_scope(owner)
            )
            .group_by(bucket)
        )
        with self._sessions.begin() as session:
            return {_moment(n, bucket_s): count for n, count in session.execute(query)}

    def tokens_per_bucket(
        self, since: datetime, until: datetime, bucket_s: int, owner: str | None = None
    ) -> dict[str, dict[datetime, TokenUse]]:
        """By model, then by bucket: the requests answered in it, their tokens and cost."""
        bucket = self._bucket(ClaudeRequest.completed_at, bucket_s)
        query = (
            select(
                ClaudeRequest.model,
                bucket,
                func.count(),
                func.sum(ClaudeRequest.input_tokens),
                func.sum(ClaudeRequest.output_tokens),
                func.sum(ClaudeRequest.cache_creation_input_tokens),
                func.sum(ClaudeRequest.cache_read_input_tokens),
                func.sum(ClaudeRequest.cost_usd),
            )
            .where(*_answered(since, until), *_scope(owner))
            .group_by(ClaudeRequest.model, bucket)
        )
        found: dict[str, dict[datetime, TokenUse]] = {}
        with self._sessions.begin() as session:
            for model, n, count, *sums in session.execute(query):
                use = TokenUse(count, *(int(s or 0) for s in sums[:4]), float(sums[4] or 0))
                found.setdefault(model, {})[_moment(n, bucket_s)] = use
        return found

    def cost_per_bucket(
        self, since: datetime, until: datetime, bucket_s: int, owner: str | None = None
    ) -> dict[datetime, float]:
        bucket = self._bucket(ClaudeRequest.completed_at, bucket_s)
        query = (
            select(bucket, func.sum(ClaudeRequest.cost_usd))
            .where(*_answered(since, until), *_scope(owner))
            .group_by(bucket)
        )
        with self._sessions.begin() as session:
            return {_moment(n, bucket_s): float(cost or 0) for n, cost in session.execute(query)}

    def slowest(
        self, since: datetime, limit: int = SLOWEST, owner: str | None = None
    ) -> list[ClaudeRequestRecord]:
        """The requests answered since ``since`` that ran longest (first start to answer)."""
        query = (
            select(ClaudeRequest)
            .where(*_answered(since, None), ClaudeRequest.started_at.is_not(None), *_scope(owner))
            .order_by(self._running(), ClaudeRequest.id)
            .limit(limit)
        )
        with self._sessions.begin() as session:
            return [ClaudeRequestRecord.from_row(row) for row in session.scalars(query)]

    def _bucket(self, column: Any, bucket_s: int) -> ColumnElement[int]:
        """Whole seconds since the epoch, floor-divided: SQLite keeps UTC text, PostgreSQL a
        timestamptz (whose epoch a plain cast would round, not floor)."""
        if self._dialect == "sqlite":
            seconds = cast(func.strftime("%s", column), BigInteger)
        else:
            seconds = cast(func.floor(func.extract("epoch", column)), BigInteger)
        # A literal divisor: a bound one would differ between SELECT and GROUP BY.
        return seconds // literal_column(str(int(bucket_s)), BigInteger)

    def _running(self) -> ColumnElement[Any]:
        """Longest first: SQLite subtracts Julian days, PostgreSQL timestamps."""
        if self._dialect == "sqlite":
            started = func.julianday(ClaudeRequest.started_at)
            return (started - func.julianday(ClaudeRequest.completed_at)).asc()
        return (ClaudeRequest.completed_at - ClaudeRequest.started_at).desc()


def _answered(since: datetime, until: datetime | None) -> list[ColumnElement[bool]]:
    conditions = [
        ClaudeRequest.status == Status.COMPLETED.value,
        ClaudeRequest.completed_at >= since,
    ]
    if until is not None:
        conditions.append(ClaudeRequest.completed_at < until)
    return conditions


def _scope(owner: str | None) -> list[ColumnElement[bool]]:
    return [] if owner is None else [ClaudeRequest.owner == owner]


def _moment(bucket: int, bucket_s: int) -> datetime:
    return EPOCH + timedelta(seconds=int(bucket) * bucket_s)
