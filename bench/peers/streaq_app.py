"""streaq: ``streaq run streaq_app:worker --workers 2``; concurrency in the ``Worker``
(16 by default, 50 for the sleeping jobs). Bulk: ``Worker.enqueue_many`` (one pipeline).
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import counting
from streaq import Worker

ASYNC = True
BULK = "Worker.enqueue_many"
CHUNK = 1000

worker = Worker(
    redis_url=counting.redis_url(),
    queue_name=counting.QUEUE,
    concurrency=counting.concurrency(16),
)
_stack = AsyncExitStack()


@worker.task()
async def noop() -> None:
    counting.ran()


@worker.task()
async def sleep() -> None:
    await asyncio.sleep(counting.SLEEP_S)
    counting.ran()


@worker.task()
async def stamp() -> None:
    counting.stamp()


@worker.task()
async def warm() -> None:
    counting.warmed()


JOBS = {"noop": noop, "sleep": sleep, "stamp": stamp, "warm": warm}


async def connect() -> None:
    await _stack.enter_async_context(worker)


async def disconnect() -> None:
    await _stack.aclose()


async def push(name: str) -> None:
    await JOBS[name].enqueue()


async def push_many(name: str, n: int) -> None:
    for start in range(0, n, CHUNK):
        await worker.enqueue_many([JOBS[name].enqueue() for _ in range(min(CHUNK, n - start))])
