"""Celery with the Redis broker and no result backend.

``celery -A celery_app worker -P prefork -c 2`` for the no-op drain; two
``-P gevent -c 50`` workers for the sleeping jobs. Celery has no bulk enqueue (a
``group`` publishes one message per task).
"""

from __future__ import annotations

import time

import counting
from celery import Celery

ASYNC = False
BULK = None

app = Celery("bench", broker=counting.redis_url())
app.conf.task_default_queue = counting.QUEUE


@app.task(name="noop")
def noop() -> None:
    counting.ran()


@app.task(name="sleep")
def sleep() -> None:
    time.sleep(counting.SLEEP_S)
    counting.ran()


@app.task(name="stamp")
def stamp() -> None:
    counting.stamp()


@app.task(name="warm")
def warm() -> None:
    counting.warmed()


JOBS = {"noop": noop, "sleep": sleep, "stamp": stamp, "warm": warm}


def push(name: str) -> None:
    JOBS[name].delay()
