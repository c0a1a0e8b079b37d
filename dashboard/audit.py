"""The audit log: every change made from the dashboard or its API, with who and when."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select

from core.models import AuditEntry


@dataclass(frozen=True)
class AuditRecord:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: dict[str, Any]
    address: str | None


class AuditLog:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(
        self,
        actor: str,
        action: str,
        target: str,
        detail: dict[str, Any] | None = None,
        address: str | None = None,
    ) -> None:
        values = {
            "at": datetime.now(UTC),
            "actor": actor,
            "action": action,
            "target": target[:255],
            "detail": json.dumps(detail or {}, default=str),
            "address": address,
        }
        with self.engine.begin() as connection:
            connection.execute(AuditEntry.__table__.insert().values(**values))

    def page(self, offset: int = 0, limit: int = 50) -> tuple[list[AuditRecord], int]:
        """Newest first, and how many there are in all."""
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).offset(offset).limit(limit)
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
            total = connection.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
        return [_record(row) for row in rows], total


def _record(row: AuditEntry) -> AuditRecord:
    return AuditRecord(
        row.id, row.at, row.actor, row.action, row.target, _detail(row.detail), row.address
    )


def _detail(text: str) -> dict[str, Any]:
    """A detail that does not read as a JSON object is shown as it is, not fatal."""
    try:
        detail = json.loads(text)
    except ValueError:
        return {"unreadable": text}
    return detail if isinstance(detail, dict) else {"value": detail}
