"""The floor: the least a job queue in Python on redis-py can do, measured like the peers.

It is not a library and it is not safe: the producer RPUSHes ``{"job": name}``, and each
worker thread BLPOPs a job and runs it, with nothing signed, leased, acked, recorded or
retried. What it costs is what every library here pays before its own work (the
interpreter, redis-py, one round trip per push and per pickup), so the targets can be
read against it: a figure that asks for more than the floor asks for more than redis-py.

    python -m floor_app    # a worker process: BENCH_CONCURRENCY threads (1 by default)
"""

from __future__ import annotations

import json
import threading
import time

import counting

ASYNC = False
BULK = "RPUSH of 1000 jobs"
CHUNK = 1000


def sleep() -> None:
    time.sleep(counting.SLEEP_S)
    counting.ran()


JOBS = {"noop": counting.ran, "sleep": sleep, "stamp": counting.stamp, "warm": counting.warmed}


def payload(name: str) -> str:
    return json.dumps({"job": name})


def push(name: str) -> None:
    counting.client().rpush(counting.QUEUE, payload(name))


def push_many(name: str, n: int) -> None:
    for start in range(0, n, CHUNK):
        counting.client().rpush(counting.QUEUE, *[payload(name)] * min(CHUNK, n - start))


def work() -> None:
    while True:
        _, raw = counting.client().blpop([counting.QUEUE])
        JOBS[json.loads(raw)["job"]]()


if __name__ == "__main__":
    threads = [threading.Thread(target=work) for _ in range(counting.concurrency(1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
