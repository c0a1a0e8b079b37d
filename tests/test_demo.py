"""The demo producer: the mix it pushes, and how that mix runs on a real worker."""

from __future__ import annotations

import pytest

from core import demo
from core.job_record import JobIndex, JobRecord, JobStatus
from core.payload import parse

ROUNDS = demo.CHAIN_EVERY  # enough for an invoice batch and a feed chain


@pytest.fixture
def recorded(runtime):
    """Every job record pushed so far, oldest first."""

    def read() -> list[JobRecord]:
        page = runtime.dispatcher.recorder().records.page(JobIndex.RECENT, limit=1000)
        assert page.next_before is None
        return page.records[::-1]

    return read


def in_redis(runtime) -> int:
    return sum(runtime.queue().size(queue) for queue in demo.QUEUES)


def argument(runtime, record: JobRecord):
    [value] = parse(record.payload, runtime.settings.signing_keys()).body["args"]
    return value


def named(records: list[JobRecord], job_name: str) -> list[JobRecord]:
    return [r for r in records if r.name == job_name]


def test_produce_pushes_the_documented_mix_and_counts_what_is_in_redis(runtime, recorded):
    pushed = demo.produce(runtime.dispatcher, rounds=ROUNDS, pause_s=0)

    records = recorded()
    assert pushed == in_redis(runtime) == len(records)
    assert {r.queue for r in records} == set(demo.QUEUES)
    assert {r.name for r in records} == {
        "core.demo.send_welcome_email",
        "core.demo.resize_image",
        "core.demo.build_report",
        "core.demo.ImportFeed",
        "core.demo.render_invoice",
        "core.demo.charge_card",
    }
    for email in named(records, "core.demo.send_welcome_email"):
        assert email.tags == [f"user:{argument(runtime, email)}"]
    reports = named(records, "core.demo.build_report")
    assert [r.tags[0] for r in reports] == [f"report:{n}" for n in range(1, ROUNDS + 1)]
    assert all(r.tags[1].startswith("user:") for r in reports)
    [invoices] = runtime.dispatcher.workflows.batches.list()
    assert (invoices.name, invoices.total_jobs) == (f"invoices, round {demo.BATCH_EVERY}", 5)


def burst_queue(runtime, round_no: int) -> str:
    """Run a burst round; the one queue it piled up, checking the count it returned."""
    before = {queue: runtime.queue().size(queue) for queue in demo.QUEUES}
    pushed = demo.produce_round(runtime.dispatcher, round_no)
    grown = {queue: runtime.queue().size(queue) - before[queue] for queue in demo.QUEUES}
    assert pushed == sum(grown.values())
    [queue] = [queue for queue, count in grown.items() if count >= demo.BURST_SIZE]
    return queue


def test_a_burst_round_piles_one_queue_up_and_the_next_burst_another(runtime):
    first = burst_queue(runtime, demo.BURST_EVERY)
    second = burst_queue(runtime, 2 * demo.BURST_EVERY)

    assert first != second
    assert demo.produce_round(runtime.dispatcher, demo.BURST_EVERY + 1) < demo.BURST_SIZE


def test_the_demo_jobs_complete_or_fail_on_a_real_worker_as_designed(runtime, skyline, recorded):
    demo.produce(runtime.dispatcher, rounds=ROUNDS, pause_s=0)
    runtime.dispatcher.dispatch([demo.charge_card.prepare(n) for n in (8, 9)])

    result = skyline("work", demo.DEMO_QUEUES, "--app", "core.demo", "--stop-when-empty")

    assert result.returncode == 0, result.stderr
    records = recorded()
    steady = {"send_welcome_email", "resize_image", "ImportFeed", "render_invoice", "index_feed"}
    for name in steady | {"close_invoice_run"}:
        statuses = {r.status for r in named(records, f"core.demo.{name}")}
        assert statuses == {JobStatus.COMPLETED}, name
    charges = {argument(runtime, r): r.status for r in named(records, "core.demo.charge_card")}
    assert {8: JobStatus.FAILED, 9: JobStatus.COMPLETED}.items() <= charges.items()
    for invoice_id, status in charges.items():
        declined = invoice_id % demo.DECLINED_EVERY == 0
        assert status == (JobStatus.FAILED if declined else JobStatus.COMPLETED)
    [invoices] = runtime.dispatcher.workflows.batches.list()
    assert invoices.finished
    batch_charge = argument(runtime, named(records, "core.demo.charge_card")[0])
    assert invoices.failed_jobs == (1 if batch_charge % demo.DECLINED_EVERY == 0 else 0)


def test_skyline_demo_command_says_how_many_jobs_it_pushed(runtime, skyline):
    result = skyline("demo", "--rounds", str(demo.BATCH_EVERY), "--pause", "0")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"Pushed {in_redis(runtime)} demo jobs.\n"
    assert runtime.dispatcher.workflows.batches.count() == 1
