"""Expiry of requests left pending too long: the records, the jobs taken off the real Redis
queues, the batches they belong to, and their webhooks."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from core.alert_channels import signature
from core.claude import submit
from core.claude.batches import batch_progress, submit_batch
from core.claude.expiry import expire_pending
from core.claude.job import JOB_NAME, process_request, request_job
from core.claude.records import Status
from core.claude.submission import validate
from core.job_record import JobIndex, JobStatus
from core.keys import Keys
from core.payload import build
from tests.claude.batch_worker import work_batches
from tests.claude.conftest import record, work
from tests.receivers import HttpReceiver

DAY = timedelta(days=1)
NORMAL = Keys().queue("claude-normal")


def submitted_long_ago(services, prompt: str = "old", **fields) -> str:
    """A request stored two days ago, its job queued the way ``submit`` queues it."""
    request = validate(services.claude, prompt=prompt, **fields)
    stored = services.requests.create(request, now=datetime.now(UTC) - 2 * DAY)
    services.dispatcher.dispatch([request_job(stored.id, stored.priority, services.claude)])
    return stored.id


def test_requests_pending_too_long_expire_and_their_jobs_leave_the_queue(
    runtime, services, fake_anthropic
):
    old = submitted_long_ago(services)
    new = submit("new")

    done = expire_pending(services)

    assert (done.expired, done.removed) == ([old], 1)
    expired = record(services, old)
    assert (expired.status, expired.expired_at is not None) == (Status.EXPIRED, True)
    assert record(services, new).status is Status.PENDING
    assert runtime.queue().size("claude-normal") == 1
    assert work(runtime) == 0
    assert [body["messages"][0]["content"] for body in fake_anthropic.bodies()] == ["new"]


def pending_records(runtime) -> dict[str, str]:
    """The dashboard's Pending jobs list: request id -> job id."""
    page = runtime.dispatcher.recorder().records.page(JobIndex.PENDING)
    return {json.loads(json.loads(r.payload)["body"])["args"][0]: r.id for r in page.records}


def test_a_removed_job_leaves_the_pending_list_and_its_record_says_why(runtime, services):
    old = submitted_long_ago(services)
    new = submit("new")
    job_of = pending_records(runtime)
    assert set(job_of) == {old, new}

    expire_pending(services)

    records = runtime.dispatcher.recorder().records
    assert set(pending_records(runtime)) == {new}
    removed = records.get(job_of[old])
    assert removed.status is JobStatus.FAILED and removed.failed_at is not None
    assert removed.exception.startswith("ClaudeRequestExpired: taken off the queue")
    assert "pending_expiry_s (86400 s)" in removed.exception
    assert records.get(job_of[new]).status is JobStatus.PENDING
    assert runtime.failed_store.get(job_of[old]) is None, "never ran: nothing to retry"


def test_a_job_waiting_in_the_delayed_set_is_removed_too(runtime, services, redis_client):
    request = services.requests.create(validate(services.claude, prompt="held back"))
    process_request.options(queue="claude-normal", delay=600).dispatch(request.id)
    assert redis_client.zcard(NORMAL.delayed) == 1

    done = expire_pending(services, now=datetime.now(UTC) + 2 * DAY)

    assert (done.expired, done.removed) == ([request.id], 1)
    assert redis_client.zcard(NORMAL.delayed) == 0


def test_requests_under_way_or_finished_do_not_expire(services):
    running = submitted_long_ago(services, "running")
    services.requests.processing(running)
    cancelled = submitted_long_ago(services, "cancelled")
    services.requests.cancelled(cancelled)

    assert expire_pending(services).expired == []

    assert [record(services, i).status for i in (running, cancelled)] == [
        Status.PROCESSING,
        Status.CANCELLED,
    ]


def test_a_job_a_worker_holds_stays_where_it_is(runtime, services, redis_client):
    old = submitted_long_ago(services)
    held = runtime.queue().pop("claude-normal", ["a-lease"], 30).reserved

    done = expire_pending(services)

    assert (done.expired, done.removed, len(held)) == ([old], 0, 1)
    assert redis_client.zcard(NORMAL.reserved) == 1


def test_only_payloads_this_application_signed_are_removed(runtime, services, redis_client):
    old = submitted_long_ago(services)
    body = {"id": "forged", "job": JOB_NAME, "queue": "claude-normal", "args": [old]}
    forged = build(body, "someone else's key", available_at=0)
    redis_client.rpush(NORMAL.ready, forged)

    assert expire_pending(services).removed == 1

    assert [raw.decode() for raw in redis_client.lrange(NORMAL.ready, 0, -1)] == [forged]


def test_expired_requests_of_a_batch_count_as_done_so_the_batch_finishes(
    runtime, services, fake_anthropic
):
    batch_id = submit_batch([{"prompt": "one"}, {"prompt": "two"}])

    done = expire_pending(services, now=datetime.now(UTC) + 2 * DAY)

    assert (len(done.expired), done.removed) == (2, 2)
    assert batch_progress(batch_id)["expired"] == 2
    skyline = services.dispatcher.workflows.batches.get(batch_id)
    assert (skyline.finished, skyline.pending_jobs) == (True, 0)
    assert work_batches(runtime) == 0
    assert fake_anthropic.received == []


def test_an_expired_request_with_a_webhook_posts_its_event(runtime, configure):
    secret = "whsec-for-tests"
    services = configure(webhook_secret=SecretStr(secret))
    receiver = HttpReceiver()
    try:
        old = submitted_long_ago(services, webhook_url=receiver.url("/hook"))
        expire_pending(services)
        assert work(runtime) == 0
    finally:
        receiver.close()

    [delivery] = receiver.requests
    assert delivery.headers["X-Skyline-Signature"] == signature(delivery.body, secret)
    event = json.loads(delivery.body)
    assert (event["type"], event["request_id"], event["status"]) == (
        "claude.request.expired",
        old,
        "expired",
    )
