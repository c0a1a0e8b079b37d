"""huey: ``RedisHuey`` (blocking BRPOP); ``huey_consumer huey_app.huey -k process -w 2``
for the no-op drain, two ``-k greenlet -w 50`` consumers for the sleeping jobs.

Huey has no bulk enqueue: ``Task.map()`` calls ``enqueue`` once per item.
"""

from __future__ import annotations

import os

if os.environ.get("BENCH_GEVENT"):  # huey's docs: patch before anything else imports
    from gevent import monkey

    monkey.patch_all()

import time

import counting
from huey import RedisHuey

ASYNC = False
BULK = None

huey = RedisHuey(counting.QUEUE, url=counting.redis_url())


@huey.task()
def noop() -> None:
    counting.ran()


@huey.task()
def sleep() -> None:
    time.sleep(counting.SLEEP_S)
    counting.ran()


@huey.task()
def stamp() -> None:
    counting.stamp()


@huey.task()
def warm() -> None:
    counting.warmed()


JOBS = {"noop": noop, "sleep": sleep, "stamp": stamp, "warm": warm}


def push(name: str) -> None:
    JOBS[name]()
