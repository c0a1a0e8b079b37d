"""The Claude request store: one SQL row per request, written at each step of its life.

Every step is a conditional update: a request moves on only from the statuses it may
leave, so a cancel that lands while a worker runs the request is never overwritten by
the worker, and a job that runs twice cannot finish a request twice.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Engine, func, insert, select, update

from core.claude.cost import Usage
from core.db import session_factory
from core.models import ClaudeRequest


class Status(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


UNFINISHED = (Status.PENDING, Status.PROCESSING)
NO_ERROR_TEXT = "failed"


@dataclass(frozen=True)
class NewRequest:
    """A validated request, ready to store (``core.claude.submit`` checks it)."""

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int
    temperature: float
    system: str | None = None
    owner: str = ""
    priority: str = "normal"
    webhook_url: str | None = None
    batch_id: str | None = None


@dataclass(frozen=True)
class Response:
    """What one request got back, from the API or the response cache."""

    text: str
    stop_reason: str | None
    usage: Usage
    cost_usd: float
    cached: bool = False


@dataclass(frozen=True)
class ClaudeRequestRecord:
    id: str
    owner: str
    status: Status
    priority: str
    model: str
    system: str | None
    messages: list[dict[str, Any]]
    max_tokens: int
    temperature: float
    webhook_url: str | None
    batch_id: str | None
    response_text: str | None
    stop_reason: str | None
    usage: Usage
    cost_usd: float
    cached: bool
    error: str | None
    attempts: int
    times_rate_limited: int  # answers that were 429, across attempts
    times_overloaded: int  # answers that were 529
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    failed_at: datetime | None
    cancelled_at: datetime | None
    expired_at: datetime | None

    @classmethod
    def from_row(cls, row: ClaudeRequest) -> ClaudeRequestRecord:
        values = {f.name: getattr(row, f.name, None) for f in fields(cls)}
        values["status"] = Status(row.status)
        values["messages"] = _messages(row.messages)
        values["usage"] = Usage(**{f.name: getattr(row, f.name) for f in fields(Usage)})
        return cls(**values)

    @property
    def finished_at(self) -> datetime | None:
        return self.completed_at or self.failed_at or self.cancelled_at or self.expired_at


def _messages(text: str) -> list[dict[str, Any]]:
    """The stored messages; an unreadable value reads as none rather than breaking a page."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return []
    return value if isinstance(value, list) else []


class ClaudeRequestRepository:
    def __init__(self, engine: Engine) -> None:
        self._sessions = session_factory(engine)

    def create(self, request: NewRequest, now: datetime | None = None) -> ClaudeRequestRecord:
        return self.create_many([request], now)[0]

    def create_many(
        self, requests: list[NewRequest], now: datetime | None = None
    ) -> list[ClaudeRequestRecord]:
        """Store pending requests in one transaction (a batch's go in together or not at all)."""
        now = now or datetime.now(UTC)
        rows = [_new_row(request, now) for request in requests]
        if rows:
            with self._sessions.begin() as session:
                session.execute(insert(ClaudeRequest), rows)
        return [self._as_record(row) for row in rows]

    def get(self, id: str, owner: str | None = None) -> ClaudeRequestRecord | None:
        """One request; with ``owner``, only if it is theirs (another's reads as missing)."""
        query = select(ClaudeRequest).where(ClaudeRequest.id == id, *_scope(owner))
        with self._sessions.begin() as session:
            row = session.scalars(query).first()
            return ClaudeRequestRecord.from_row(row) if row else None

    def list(
        self,
        *,
        owner: str | None = None,
        status: Status | None = None,
        batch_id: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> list[ClaudeRequestRecord]:
        """Newest first."""
        query = (
            select(ClaudeRequest)
            .where(*_filters(owner, status, batch_id))
            .order_by(ClaudeRequest.created_at.desc(), ClaudeRequest.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self._sessions.begin() as session:
            return [ClaudeRequestRecord.from_row(row) for row in session.scalars(query)]

    def count(
        self,
        *,
        owner: str | None = None,
        status: Status | None = None,
        batch_id: str | None = None,
    ) -> int:
        query = select(func.count()).where(*_filters(owner, status, batch_id))
        with self._sessions.begin() as session:
            return session.execute(query.select_from(ClaudeRequest)).scalar_one()

    def counts(self, *, owner: str | None = None, batch_id: str | None = None) -> dict[Status, int]:
        """Requests per status, every status present (a batch's progress, an owner's totals)."""
        query = (
            select(ClaudeRequest.status, func.count())
            .where(*_filters(owner, None, batch_id))
            .group_by(ClaudeRequest.status)
        )
        with self._sessions.begin() as session:
            found = {Status(status): n for status, n in session.execute(query)}
        return {status: found.get(status, 0) for status in Status}

    def processing(self, id: str, now: datetime | None = None) -> ClaudeRequestRecord | None:
        """A worker takes the request: one more attempt. None when it must not run (it was
        cancelled, expired or finished, or never existed)."""
        changes = dict(
            status=Status.PROCESSING.value,
            attempts=ClaudeRequest.attempts + 1,
            started_at=func.coalesce(ClaudeRequest.started_at, now or datetime.now(UTC)),
        )
        return self._move(id, UNFINISHED, changes)

    def retrying(
        self, id: str, error: str, *, rate_limited: bool = False, overloaded: bool = False
    ) -> bool:
        """An attempt failed and the request will be tried again: keep the error to show,
        and count a 429 (``rate_limited``) or 529 (``overloaded``) answer."""
        changes: dict[str, Any] = {"error": error}
        if rate_limited:
            changes["times_rate_limited"] = ClaudeRequest.times_rate_limited + 1
        if overloaded:
            changes["times_overloaded"] = ClaudeRequest.times_overloaded + 1
        return self._move(id, (Status.PROCESSING,), changes) is not None

    def completed(
        self, id: str, response: Response, now: datetime | None = None
    ) -> ClaudeRequestRecord | None:
        changes = dict(
            status=Status.COMPLETED.value,
            response_text=response.text,
            stop_reason=response.stop_reason,
            cost_usd=response.cost_usd,
            cached=response.cached,
            error=None,
            completed_at=now or datetime.now(UTC),
            **{f.name: getattr(response.usage, f.name) for f in fields(Usage)},
        )
        return self._move(id, (Status.PROCESSING,), changes)

    def failed(
        self, id: str, error: str | None = None, now: datetime | None = None
    ) -> ClaudeRequestRecord | None:
        """Failed for good; without an ``error`` the last one an attempt recorded stays."""
        changes = dict(
            status=Status.FAILED.value,
            error=func.coalesce(error, ClaudeRequest.error, NO_ERROR_TEXT),
            failed_at=now or datetime.now(UTC),
        )
        return self._move(id, UNFINISHED, changes)

    def reopened(self, id: str) -> ClaudeRequestRecord | None:
        """A failed request sent again (its failed job was retried): pending once more.

        Only a failed one: a completed request has its answer (sending it again would pay
        twice for it), a cancelled one was not wanted, and an expired one was not wanted
        any more. Conditional, so two retries that race reopen it once (None for the
        other). The error stays, as the last one seen, until an answer clears it; the
        attempts keep counting; ``failed_at`` goes, so the request no longer reads finished.
        """
        changes = dict(status=Status.PENDING.value, failed_at=None)
        return self._move(id, (Status.FAILED,), changes)

    def cancelled(
        self, id: str, owner: str | None = None, now: datetime | None = None
    ) -> ClaudeRequestRecord | None:
        """Cancel a pending or processing request (``owner``: only one of theirs)."""
        changes = dict(status=Status.CANCELLED.value, cancelled_at=now or datetime.now(UTC))
        return self._move(id, UNFINISHED, changes, *_scope(owner))

    def expired(self, created_before: datetime, now: datetime | None = None) -> list[str]:
        """Expire the requests still pending that were created before ``created_before``;
        their ids, so their jobs can be removed."""
        statement = (
            update(ClaudeRequest)
            .where(
                ClaudeRequest.status == Status.PENDING.value,
                ClaudeRequest.created_at < created_before,
            )
            .values(status=Status.EXPIRED.value, expired_at=now or datetime.now(UTC))
            .returning(ClaudeRequest.id)
        )
        with self._sessions.begin() as session:
            return list(session.scalars(statement))

    def expired_one(
        self, id: str, error: str, now: datetime | None = None
    ) -> ClaudeRequestRecord | None:
        """Expire one unfinished request, saying why (its Message Batch ran out of time)."""
        moment = now or datetime.now(UTC)
        changes = dict(status=Status.EXPIRED.value, error=error, expired_at=moment)
        return self._move(id, UNFINISHED, changes)

    def _move(
        self,
        id: str,
        allowed: tuple[Status, ...],
        changes: dict[str, Any],
        *conditions: ColumnElement[bool],
    ) -> ClaudeRequestRecord | None:
        """Apply ``changes`` if the request is in one of the ``allowed`` statuses."""
        statement = (
            update(ClaudeRequest)
            .where(
                ClaudeRequest.id == id,
                ClaudeRequest.status.in_([status.value for status in allowed]),
                *conditions,
            )
            .values(changes)
            .returning(ClaudeRequest)
        )
        with self._sessions.begin() as session:
            row = session.scalars(statement).first()
            return ClaudeRequestRecord.from_row(row) if row else None

    @staticmethod
    def _as_record(row: dict[str, Any]) -> ClaudeRequestRecord:
        return ClaudeRequestRecord.from_row(ClaudeRequest(**row))


def _new_row(request: NewRequest, now: datetime) -> dict[str, Any]:
    return dict(
        id=str(uuid.uuid4()),
        owner=request.owner,
        status=Status.PENDING.value,
        priority=request.priority,
        model=request.model,
        system=request.system,
        messages=json.dumps(request.messages, separators=(",", ":")),
        max_tokens=request.max_tokens,
        temperature=request.temperature,
        webhook_url=request.webhook_url,
        batch_id=request.batch_id,
        input_tokens=0,
        output_tokens=0,
        cache_creation_input_tokens=0,
        cache_read_input_tokens=0,
        cost_usd=0.0,
        cached=False,
        attempts=0,
        times_rate_limited=0,
        times_overloaded=0,
        created_at=now,
    )


def _scope(owner: str | None) -> list[ColumnElement[bool]]:
    return [] if owner is None else [ClaudeRequest.owner == owner]


def _filters(
    owner: str | None, status: Status | None, batch_id: str | None
) -> list[ColumnElement[bool]]:
    conditions = _scope(owner)
    if status is not None:
        conditions.append(ClaudeRequest.status == Status(status).value)
    if batch_id is not None:
        conditions.append(ClaudeRequest.batch_id == batch_id)
    return conditions
