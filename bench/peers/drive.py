"""The producer side of the peer benchmark, run in the measured library's virtualenv.

    python drive.py LIB ACTION N

LIB names an app module (``huey`` imports ``huey_app``). Actions, each printing one JSON
line on stdout:

- ``one N`` / ``bulk N``: time N no-op enqueues, one by one / with the library's bulk API
  (``{"seconds": null}`` when it has none); the clock excludes imports and connecting;
- ``push-noop N`` / ``push-sleep N``: write time.time() to ``peers:start``, then push N
  jobs, in bulk where the library can, else one by one (the drain's clock starts there);
- ``warm N``: push warm-up jobs until N distinct worker processes have run one and every
  warm-up job has run, so the drain starts with every worker ready;
- ``latency N``: N times, push one job and wait for it to say when it started, with a
  pause between samples so the workers are idle each time; prints the latencies in s.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import json
import sys
import time

import counting

WARM_TIMEOUT_S = 120.0
LATENCY_TIMEOUT_S = 30.0
IDLE_GAP_S = 0.02
POLL_S = 0.01


async def call(function, *args):
    result = function(*args)
    return await result if inspect.isawaitable(result) else result


async def push_all(app, name: str, n: int, bulk: bool) -> None:
    if bulk:
        await call(app.push_many, name, n)
        return
    for _ in range(n):
        await call(app.push, name)


async def timed(app, n: int, bulk: bool) -> dict:
    if bulk and not app.BULK:
        return {"seconds": None}
    start = time.perf_counter()
    await push_all(app, "noop", n, bulk)
    return {"seconds": time.perf_counter() - start}


async def push(app, name: str, n: int) -> dict:
    counting.client().set(counting.START_KEY, repr(time.time()))
    await push_all(app, name, n, bulk=bool(app.BULK))
    return {}


def wait_for(condition, deadline: float, what: str) -> None:
    while not condition():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(POLL_S)


async def warm(app, processes: int) -> dict:
    r = counting.client()
    deadline = time.monotonic() + WARM_TIMEOUT_S
    pushed = 0

    def all_ran() -> bool:
        return int(r.get(counting.WARM_KEY) or 0) >= pushed

    while r.scard(counting.PIDS_KEY) < processes:
        for _ in range(processes):
            await call(app.push, "warm")
        pushed += processes
        wait_for(all_ran, deadline, f"{pushed} warm-up jobs")
    r.delete(*counting.KEYS)
    return {"warm_jobs": pushed}


async def latency(app, samples: int) -> dict:
    r = counting.client()
    r.delete(counting.STAMPS_KEY)
    seconds = []
    for _ in range(samples):
        sent = time.time()
        await call(app.push, "stamp")
        popped = r.blpop([counting.STAMPS_KEY], timeout=LATENCY_TIMEOUT_S)
        if popped is None:
            raise SystemExit(f"a latency job did not start within {LATENCY_TIMEOUT_S} s")
        seconds.append(float(popped[1]) - sent)
        time.sleep(IDLE_GAP_S)
    return {"seconds": seconds}


async def main(lib: str, action: str, n: int) -> dict:
    app = importlib.import_module(f"{lib}_app")
    if hasattr(app, "connect"):
        await call(app.connect)
    try:
        if action in ("one", "bulk"):
            return await timed(app, n, bulk=action == "bulk")
        if action.startswith("push-"):
            return await push(app, action.removeprefix("push-"), n)
        if action == "warm":
            return await warm(app, n)
        if action == "latency":
            return await latency(app, n)
        raise SystemExit(
            f"unknown action {action!r}: use one, bulk, push-noop, push-sleep, warm or latency"
        )
    finally:
        if hasattr(app, "disconnect"):
            await call(app.disconnect)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))))
