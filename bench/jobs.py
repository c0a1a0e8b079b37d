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
async def async_noop() -> None:
    """Does nothing on the event loop: Skyline's own cost per async job."""


@job(queue=BENCH_QUEUE)
async def async_sleep_10ms() -> None:
    """Waits 10 ms without holding the CPU, like a small network call."""
    await asyncio.sleep(SLEEP_S)


# --- more names and queues, for bench/dashboard.py's filters --------------------------


class PaymentDeclined(Exception):
    pass


@job(queue="emails")
def send_email(user_id: int) -> None:
    """A no-op under another name and queue, so the dashboard's filters have a choice."""


@job(queue="images")
def resize_image(image_id: int) -> None:
    """A no-op on a third queue."""


@job(queue=BENCH_QUEUE)
def heartbeat() -> None:
    """A no-op that bench/dashboard.py's config silences, to fill the silenced list."""


@job(queue="payments", tries=1)
def charge_card(order_id: int) -> None:
    """Always fails at once: real failures, with the Redis records a worker writes."""
    raise PaymentDeclined(f"card declined for order {order_id}: insufficient_funds")
