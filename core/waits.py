"""Measured wait per queue: how long the oldest ready job has waited since it became available."""

from __future__ import annotations

import json
from dataclasses import dataclass

from core.queue import RedisQueue


@dataclass(frozen=True)
class QueueWait:
    connection: str
    queue: str
    ready: int
    oldest_wait_s: float


def measure_waits(
    queue: RedisQueue, connection: str, names: list[str], now_ms: int
) -> list[QueueWait]:
    """One round trip for all ``names`` of one connection."""
    heads = queue.ready_heads(names) if names else []
    return [
        QueueWait(connection, name, ready, wait_age_s(head, now_ms))
        for name, (ready, head) in zip(names, heads, strict=True)
    ]


def wait_age_s(head: bytes | str | None, now_ms: int) -> float:
    """0 for an empty queue or a payload that does not say when it became available."""
    if not head:
        return 0.0
    try:
        available_at = json.loads(head).get("available_at")
    except (ValueError, AttributeError, RecursionError):
        return 0.0
    if isinstance(available_at, bool) or not isinstance(available_at, int | float):
        return 0.0
    if available_at <= 0:
        return 0.0
    return max(now_ms - available_at, 0) / 1000
