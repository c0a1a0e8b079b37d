"""Skyline's side of the peer benchmark: the four jobs and the producer.

Workers run ``python -m core.cli work bench --app skyline_app``, with recording and
metrics on (the defaults).
"""

from __future__ import annotations

import asyncio

import counting

from core import dispatch_bulk, job, set_dispatcher

ASYNC = False
BULK = "dispatch_bulk"
CHUNK = 1000


@job(queue=counting.QUEUE)
def noop() -> None:
    counting.ran()


@job(queue=counting.QUEUE)
async def sleep() -> None:
    await asyncio.sleep(counting.SLEEP_S)
    counting.ran()


@job(queue=counting.QUEUE)
def stamp() -> None:
    counting.stamp()


@job(queue=counting.QUEUE)
def warm() -> None:
    counting.warmed()


JOBS = {"noop": noop, "sleep": sleep, "stamp": stamp, "warm": warm}


def connect() -> None:
    from core.db import migrate
    from core.runtime import Runtime
    from core.settings import load_settings

    runtime = Runtime(load_settings())
    migrate(runtime.engine)
    set_dispatcher(runtime.dispatcher)


def push(name: str) -> None:
    JOBS[name].dispatch()


def push_many(name: str, n: int) -> None:
    for start in range(0, n, CHUNK):
        dispatch_bulk([JOBS[name].prepare() for _ in range(min(CHUNK, n - start))])
