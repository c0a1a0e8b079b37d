"""Paging through a sorted set of ids, newest first, with filters and a score cursor.

Job indexes give each job a score of its own (``core.job_record.SCORES_PER_MS``), but a
page still ends only between two different scores: a cursor that split equal ones would
skip or repeat some.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

import redis

T = TypeVar("T")

SCAN_CHUNK = 200
SCAN_LIMIT = 10_000  # entries read for one page, so a rare filter cannot read a whole index


@dataclass(frozen=True)
class Page(Generic[T]):
    records: list[T]
    next_before: int | None  # pass as ``before`` for the next page; None: nothing older


def scan_page(
    client: redis.Redis,
    key: str,
    oldest: float,
    before: int | None,
    limit: int,
    load: Callable[[list[bytes]], list[T | None]],
    wanted: Callable[[T], bool],
) -> Page[T]:
    """Records from ``key`` scored in [oldest, before), that ``load`` finds and ``wanted`` keeps."""
    top = "+inf" if before is None else f"({before}"
    found: list[T] = []
    boundary: int | None = None
    scanned = 0
    chunk = min(limit + 1, SCAN_CHUNK)
    while True:
        entries = client.zrevrangebyscore(
            key, top, oldest, start=scanned, num=chunk, withscores=True
        )
        if not entries:
            return Page(found, None)
        scanned += len(entries)
        chunk = min(chunk * 2, SCAN_CHUNK)  # a page that filters reads on in bigger chunks
        for (_, score), record in zip(entries, load([i for i, _ in entries]), strict=True):
            if boundary is not None and score < boundary:
                return Page(found, boundary)
            if record is not None and wanted(record):
                found.append(record)
            if boundary is None and (len(found) >= limit or scanned >= SCAN_LIMIT):
                boundary = int(score)  # a whole number, held exactly by the float
