"""What every benchmarked job does besides its work: count itself in Redis.

Imported by each library's app module, in that library's own virtualenv, so it needs
nothing but redis-py. Every job of every library (Skyline included) makes the same one
Redis call, so the count costs everyone alike, and a library that drops or repeats jobs
shows it in the count.
"""

from __future__ import annotations

import os
import time

import redis

QUEUE = "bench"
SLEEP_S = 0.01
COUNT_KEY = "peers:count"  # INCR by every noop and sleep job
START_KEY = "peers:start"  # time.time() the producer wrote just before its push
WARM_KEY = "peers:warm"  # INCR by every warm-up job
PIDS_KEY = "peers:pids"  # the worker processes that ran a warm-up job
STAMPS_KEY = "peers:stamps"  # time.time() at the start of each latency job
KEYS = (COUNT_KEY, START_KEY, WARM_KEY, PIDS_KEY, STAMPS_KEY)

_client: redis.Redis | None = None


def redis_url() -> str:
    return os.environ["BENCH_REDIS_URL"]


def concurrency(default: int) -> int:
    """Jobs at once per worker process, for libraries that set it in code."""
    return int(os.environ.get("BENCH_CONCURRENCY") or default)


def client() -> redis.Redis:
    global _client
    if _client is None:  # made lazily: prefork pools import this before forking
        _client = redis.Redis.from_url(redis_url())
    return _client


def ran() -> None:
    client().incr(COUNT_KEY)


def stamp() -> None:
    client().rpush(STAMPS_KEY, repr(time.time()))


def warmed(pid: int | None = None) -> None:
    pipe = client().pipeline(transaction=False)
    pipe.sadd(PIDS_KEY, pid or os.getpid())
    pipe.incr(WARM_KEY)
    pipe.execute()
