"""Demo jobs and a producer, so a newcomer sees jobs flow on the embedded default."""

from __future__ import annotations

import asyncio
import random
import time

from core.dispatcher import Dispatcher
from core.job import Job, job

DEMO_QUEUES = "high,default,low"


@job(queue="high")
def send_welcome_email(user_id: int) -> None:
    time.sleep(random.uniform(0.005, 0.03))


@job(queue="default", timeout=10)
def resize_image(image_id: int, width: int = 640) -> None:
    time.sleep(random.uniform(0.05, 0.4))


@job(queue="low", tries=3, backoff=[1, 5])
def build_report(report_id: int) -> None:
    time.sleep(random.uniform(0.1, 0.5))
    if random.random() < 0.3:
        raise RuntimeError(f"report {report_id}: upstream returned 502")


class ImportFeed(Job):
    queue = "default"
    tries = 2

    def __init__(self, feed_url: str) -> None:
        self.feed_url = feed_url

    async def handle(self) -> None:
        await asyncio.sleep(random.uniform(0.1, 0.3))


def produce(dispatcher: Dispatcher, rounds: int | None = None, pause_s: float = 1.0) -> int:
    """Dispatch a realistic mix every ``pause_s``; returns how many jobs were pushed."""
    pushed, round_no = 0, 0
    while rounds is None or round_no < rounds:
        round_no += 1
        batch = [send_welcome_email.prepare(random.randint(1, 10_000)) for _ in range(3)]
        batch += [resize_image.prepare(random.randint(1, 10_000)) for _ in range(2)]
        batch.append(build_report.prepare(round_no))
        batch.append(ImportFeed(f"https://example.com/feeds/{round_no}.xml").prepare())
        pushed += len(dispatcher.dispatch(batch))
        if rounds is None or round_no < rounds:
            time.sleep(pause_s)
    return pushed
