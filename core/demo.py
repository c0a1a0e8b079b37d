"""Demo jobs and a producer, so a newcomer sees every page come alive on the embedded default.

Each round pushes a few fast, slow, failing, async and tagged jobs across high, default and
low; every few rounds an invoice batch (whose card charge is declined now and then) and a
feed chain; about once a minute a burst onto one queue, big enough that the auto-balancer
moves a process to it (`skyline up` runs one auto pool of up to 4 over the 3 queues).
"""

from __future__ import annotations

import asyncio
import random
import time

from core.batches import PendingBatch, batch
from core.chains import chain
from core.dispatcher import Dispatcher
from core.job import Job, PreparedJob, job

DEMO_QUEUES = "high,default,low"
QUEUES = DEMO_QUEUES.split(",")
USERS = 50  # few, so that a tag such as user:42 gathers jobs worth monitoring
INVOICES_PER_BATCH = 4
DECLINED_EVERY = 4  # charge_card declines the invoices whose id is a multiple of this
BATCH_EVERY = 3  # rounds
CHAIN_EVERY = 5
BURST_EVERY = 60  # rounds: about a minute at the default pause
BURST_SIZE = 200  # jobs of ~0.1 s: some 20 s for one process, so the balancer adds one


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


@job(queue="default")
def index_feed(feed_url: str) -> None:
    """The chain's second link: runs only once ImportFeed succeeded."""
    time.sleep(random.uniform(0.02, 0.08))


@job(queue="low")
def render_invoice(invoice_id: int) -> None:
    time.sleep(random.uniform(0.02, 0.1))


@job(queue="low", tries=1)
def charge_card(invoice_id: int) -> None:
    time.sleep(random.uniform(0.02, 0.1))
    if invoice_id % DECLINED_EVERY == 0:
        raise RuntimeError(f"invoice {invoice_id}: card declined")


@job(queue="low")
def close_invoice_run(batch_id: str) -> None:
    """The invoice batch's ``finally`` callback: dispatched once every member is done."""


@job(queue="default")
def sync_inventory(sku: int) -> None:
    time.sleep(random.uniform(0.05, 0.15))


def produce(dispatcher: Dispatcher, rounds: int | None = None, pause_s: float = 1.0) -> int:
    """Dispatch a round every ``pause_s``; returns how many jobs were pushed."""
    pushed, round_no = 0, 0
    while rounds is None or round_no < rounds:
        round_no += 1
        pushed += produce_round(dispatcher, round_no)
        if rounds is None or round_no < rounds:
            time.sleep(pause_s)
    return pushed


def produce_round(dispatcher: Dispatcher, round_no: int) -> int:
    """One round of the mix (``round_no`` from 1 decides the batches, chains and bursts);
    returns how many jobs it pushed onto the queues."""
    jobs = _steady(round_no)
    if round_no % BURST_EVERY == 0:
        jobs += _burst(round_no)
    pushed = sum(1 for job_id in dispatcher.dispatch(jobs) if job_id)
    if round_no % BATCH_EVERY == 0:
        pushed += dispatcher.dispatch_batch(_invoices(round_no)).total_jobs
    if round_no % CHAIN_EVERY == 0:
        url = f"https://example.com/feeds/{round_no}.xml"
        dispatcher.dispatch_chain(chain([ImportFeed(url).prepare(), index_feed.prepare(url)]))
        pushed += 1  # the later links travel inside the first one's payload
    return pushed


def _steady(round_no: int) -> list[PreparedJob]:
    users = [random.randint(1, USERS) for _ in range(3)]
    jobs = [send_welcome_email.options(tags=[f"user:{u}"]).prepare(u) for u in users]
    jobs += [resize_image.prepare(random.randint(1, 10_000)) for _ in range(2)]
    report_tags = [f"report:{round_no}", f"user:{users[0]}"]
    jobs.append(build_report.options(tags=report_tags).prepare(round_no))
    jobs.append(ImportFeed(f"https://example.com/feeds/{round_no}.xml").prepare())
    return jobs


def _burst(round_no: int) -> list[PreparedJob]:
    """A queue that suddenly has a backlog, a different one each time."""
    queue = QUEUES[(round_no // BURST_EVERY) % len(QUEUES)]
    return [sync_inventory.options(queue=queue).prepare(sku) for sku in range(BURST_SIZE)]


def _invoices(round_no: int) -> PendingBatch:
    """Invoices rendered side by side, and one of them charged: declined one time in four."""
    first = round_no * INVOICES_PER_BATCH
    ids = range(first, first + INVOICES_PER_BATCH)
    user_tags = [f"user:{random.randint(1, USERS)}"]
    members = [render_invoice.options(tags=user_tags).prepare(n) for n in ids]
    members.append(charge_card.options(tags=user_tags).prepare(random.choice(ids)))
    name = f"invoices, round {round_no}"
    return batch(members).name(name).allow_failures().finally_(close_invoice_run)
