"""Dramatiq: ``RedisBroker``; ``dramatiq dramatiq_app --processes 2 --threads N``.

Dramatiq has no bulk enqueue (a ``group`` sends its messages one by one).
"""

from __future__ import annotations

import time

import counting
import dramatiq
from dramatiq.brokers.redis import RedisBroker

ASYNC = False
BULK = None

dramatiq.set_broker(RedisBroker(url=counting.redis_url()))


@dramatiq.actor(queue_name=counting.QUEUE)
def noop() -> None:
    counting.ran()


@dramatiq.actor(queue_name=counting.QUEUE)
def sleep() -> None:
    time.sleep(counting.SLEEP_S)
    counting.ran()


@dramatiq.actor(queue_name=counting.QUEUE)
def stamp() -> None:
    counting.stamp()


@dramatiq.actor(queue_name=counting.QUEUE)
def warm() -> None:
    counting.warmed()


JOBS = {"noop": noop, "sleep": sleep, "stamp": stamp, "warm": warm}


def push(name: str) -> None:
    JOBS[name].send()
