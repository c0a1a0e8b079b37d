"""taskiq with taskiq-redis's ``RedisStreamBroker`` (Redis streams, acked after the run).

``taskiq worker taskiq_app:broker --workers 2`` (``--max-async-tasks 50`` for the
sleeping jobs). taskiq has no bulk enqueue: ``kiq()`` sends one message.
"""

from __future__ import annotations

import asyncio

import counting
from taskiq_redis import RedisStreamBroker

ASYNC = True
BULK = None

broker = RedisStreamBroker(url=counting.redis_url(), queue_name=counting.QUEUE)


@broker.task(task_name="noop")
async def noop() -> None:
    counting.ran()


@broker.task(task_name="sleep")
async def sleep() -> None:
    await asyncio.sleep(counting.SLEEP_S)
    counting.ran()


@broker.task(task_name="stamp")
async def stamp() -> None:
    counting.stamp()


@broker.task(task_name="warm")
async def warm() -> None:
    counting.warmed()


JOBS = {"noop": noop, "sleep": sleep, "stamp": stamp, "warm": warm}


async def connect() -> None:
    await broker.startup()


async def disconnect() -> None:
    await broker.shutdown()


async def push(name: str) -> None:
    await JOBS[name].kiq()
