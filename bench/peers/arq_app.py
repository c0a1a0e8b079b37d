"""arq: ``arq arq_app.WorkerSettings``, one process per command (arq has no option for
several), so two commands; ``max_jobs`` 10 (the default), 50 for the sleeping jobs.
arq has no bulk enqueue.
"""

from __future__ import annotations

import asyncio

import counting
from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

ASYNC = True
BULK = None

redis_settings = RedisSettings.from_dsn(counting.redis_url())
pool: ArqRedis


async def noop(ctx: dict) -> None:
    counting.ran()


async def sleep(ctx: dict) -> None:
    await asyncio.sleep(counting.SLEEP_S)
    counting.ran()


async def stamp(ctx: dict) -> None:
    counting.stamp()


async def warm(ctx: dict) -> None:
    counting.warmed()


class WorkerSettings:
    functions = [noop, sleep, stamp, warm]
    redis_settings = redis_settings
    max_jobs = counting.concurrency(10)


async def connect() -> None:
    global pool
    pool = await create_pool(redis_settings)


async def disconnect() -> None:
    await pool.aclose()


async def push(name: str) -> None:
    await pool.enqueue_job(name)
