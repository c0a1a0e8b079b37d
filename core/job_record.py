"""What a job record is: its statuses, the indexes that list it, and how it reads back."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum


class JobStatus(StrEnum):
    PENDING = "pending"
    RESERVED = "reserved"
    COMPLETED = "completed"
    FAILED = "failed"
    RELEASED = "released"
    SILENCED = "silenced"


# An index scores a job by a time in ms, times SCORES_PER_MS, plus its place among the
# jobs of that millisecond in that index (core/lua/record_pushed.lua): whole numbers that
# a double holds exactly (below 2**53 until the year 2255), one per job, in write order.
SCORES_PER_MS = 1000


def score_at(ms: int) -> int:
    """The lowest index score of millisecond ``ms``: what a window's cutoff compares to."""
    return ms * SCORES_PER_MS


class JobIndex(StrEnum):
    RECENT = "recent"  # every pushed job, by push time
    PENDING = "pending"  # not finished yet, by the time it is (or was) due
    COMPLETED = "completed"
    SILENCED = "silenced"
    FAILED = "failed"
    RECENT_FAILED = "recent_failed"
    MONITORED = "monitored"  # one index per monitored tag, by push time


@dataclass(frozen=True)
class JobRecord:
    """Times are milliseconds since the epoch, like the payload's."""

    id: str
    name: str
    queue: str
    connection: str
    status: JobStatus
    payload: str
    tags: list[str]
    attempts: int
    pushed_at: int
    available_at: int
    reserved_at: int | None
    completed_at: int | None
    failed_at: int | None
    runtime_ms: float | None
    exception: str | None
    retried_from: str | None
    retried_by: list[str]

    @classmethod
    def from_hash(cls, raw: dict[bytes, bytes]) -> JobRecord | None:
        """A record from its hash; who the job is comes from the payload it holds."""
        if not raw:
            return None
        f = {key.decode(): value.decode(errors="replace") for key, value in raw.items()}
        envelope = json.loads(f["payload"])
        body = json.loads(envelope["body"])

        def number(name: str) -> int | None:
            return int(f[name]) if f.get(name) else None

        return cls(
            id=body["id"],
            name=body["job"],
            queue=body["queue"],
            connection=body["connection"],
            status=JobStatus(f["status"]),
            payload=f["payload"],
            tags=body.get("tags", []),
            attempts=int(f["attempts"]),
            pushed_at=body["pushed_at"],
            available_at=number("available_at") or envelope["available_at"],
            reserved_at=number("reserved_at") or None,
            completed_at=number("completed_at"),
            failed_at=number("failed_at"),
            runtime_ms=float(f["runtime_ms"]) if "runtime_ms" in f else None,
            exception=f.get("exception"),
            retried_from=f.get("retried_from"),
            retried_by=f["retried_by"].split(",") if f.get("retried_by") else [],
        )
