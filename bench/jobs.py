"""The benchmark's own jobs; bench/throughput.py starts workers with ``--app bench.jobs``.

They do no bookkeeping of their own, so the figures measure Skyline and nothing
else: the benchmark checks afterwards that the queue and the failed store are empty.
"""

from __future__ import annotations

import asyncio

from core import job

BENCH_QUEUE = "bench"
SLEEP_S = 0.01


@job(queue=BENCH_QUEUE)
def noop() -> None:
    """Does nothing: what is left is Skyline's own cost per job."""


@job(queue=BENCH_QUEUE)
async def async_sleep_10ms() -> None:
    """Waits 10 ms without holding the CPU, like a small network call."""
    await asyncio.sleep(SLEEP_S)
