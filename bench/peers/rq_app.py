"""RQ: ``rq worker-pool -n 2`` (each worker forks a work horse per job, RQ's default).

RQ has no in-process concurrency, so the sleeping jobs also run two at a time. Bulk:
``Queue.enqueue_many`` (one pipeline per call).
"""

from __future__ import annotations

import os
import time

import counting
from redis import Redis
from rq import Queue

ASYNC = False
BULK = "Queue.enqueue_many"
CHUNK = 1000


def noop() -> None:
    counting.ran()


def sleep() -> None:
    time.sleep(counting.SLEEP_S)
    counting.ran()


def stamp() -> None:
    counting.stamp()


def warm() -> None:
    counting.warmed(os.getppid())  # the work horse's parent is the worker process


JOBS = {"noop": noop, "sleep": sleep, "stamp": stamp, "warm": warm}
queue: Queue


def connect() -> None:
    global queue
    queue = Queue(counting.QUEUE, connection=Redis.from_url(counting.redis_url()))


def push(name: str) -> None:
    queue.enqueue(JOBS[name])


def push_many(name: str, n: int) -> None:
    for start in range(0, n, CHUNK):
        jobs = [Queue.prepare_data(JOBS[name]) for _ in range(min(CHUNK, n - start))]
        queue.enqueue_many(jobs)
