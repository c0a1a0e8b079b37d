"""SAQ: ``saq saq_app.settings --workers 2``; concurrency in the settings (10 by default,
50 for the sleeping jobs). SAQ has no bulk enqueue (``Queue.map`` enqueues one by one and
waits for the results).
"""

from __future__ import annotations

import asyncio

import counting
from saq import Queue

ASYNC = True
BULK = None

queue = Queue.from_url(counting.redis_url(), name=counting.QUEUE)


async def noop(ctx: dict) -> None:
    counting.ran()


async def sleep(ctx: dict) -> None:
    await asyncio.sleep(counting.SLEEP_S)
    counting.ran()


async def stamp(ctx: dict) -> None:
    counting.stamp()


async def warm(ctx: dict) -> None:
    counting.warmed()


settings = {
    "queue": queue,
    "functions": [noop, sleep, stamp, warm],
    "concurrency": counting.concurrency(10),
}


async def connect() -> None:
    await queue.connect()


async def disconnect() -> None:
    await queue.disconnect()


async def push(name: str) -> None:
    await queue.enqueue(name)
