"""Retrying a Claude request's failed job (``core.retrying.retry_failed``, as the CLI, the
Failed jobs page and a batch's "retry failed jobs" do) sends the request again: the real
SDK against the fake server, real Redis and SQL, a real worker in this process."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.testclient import TestClient

import core.claude.job
from core.claude import submit
from core.claude.batches import submit_batch
from core.claude.cost import Usage
from core.claude.records import Response, Status
from core.execution import WorkerDefaults
from core.registry import registry
from core.retrying import retry_failed
from core.worker import Worker, WorkerOptions
from dashboard.app import create_app
from tests.claude.batch_worker import work_batches
from tests.claude.conftest import CLAUDE_QUEUES, off_the_main_thread, record, work
from tests.claude.fake_anthropic import DEFAULT_TEXT, bad_request, server_error, slow, success
from tests.conftest import wait_until
from tests.dashboard.conftest import PASSWORD, csrf_of


def failed_request(runtime, fake_anthropic, *replies) -> tuple[str, object]:
    """A request whose job failed on ``replies``; its id and its failed-job row."""
    fake_anthropic.script(*replies)
    request_id = submit("hi")
    work(runtime)
    [failure] = runtime.failed_store.list()
    return request_id, failure


def retry(runtime, failure) -> str:
    return retry_failed(failure, runtime.dispatcher, runtime.failed_store)


def new_failures(runtime, failure) -> list:
    return [row for row in runtime.failed_store.list() if row.id != failure.id]


@pytest.mark.parametrize(
    ("replies", "error"),
    [
        ([server_error()] * 3, "500 api_error: Internal server error"),
        ([bad_request("prompt is too long")], "400 invalid_request_error: prompt is too long"),
    ],
)
def test_a_retried_failed_job_sends_its_request_again_and_completes_it(
    runtime, services, fake_anthropic, replies, error
):
    request_id, failure = failed_request(runtime, fake_anthropic, *replies)
    before = record(services, request_id)
    assert (before.status, before.error) == (Status.FAILED, error)

    retry(runtime, failure)
    assert record(services, request_id).status is Status.FAILED  # the job reopens it
    assert work(runtime) == 0  # the fake now answers 200

    done = record(services, request_id)
    assert (done.status, done.response_text, done.error) == (Status.COMPLETED, DEFAULT_TEXT, None)
    assert done.failed_at is None and done.completed_at is not None
    assert done.attempts == len(replies) + 1
    assert len(fake_anthropic.received) == len(replies) + 1
    assert new_failures(runtime, failure) == []


def test_the_request_page_shows_the_retried_request_processing_then_completed(
    runtime, services, fake_anthropic
):
    request_id, failure = failed_request(runtime, fake_anthropic, *[server_error()] * 3)
    fake_anthropic.script(slow(1.0, success("Now it works.")))
    path = f"/ai/requests/{request_id}"
    with TestClient(create_app(runtime), follow_redirects=False) as client:
        client.app.state.dashboard.users.add("viewer@example.com", PASSWORD, "viewer")
        form = {"email": "viewer@example.com", "password": PASSWORD}
        client.post("/login", data={**form, "csrf_token": csrf_of(client)})
        assert "No answer: the request failed." in client.get(path).text

        retry(runtime, failure)
        with ThreadPoolExecutor(1) as pool:
            worker = pool.submit(work, runtime)
            wait_until(lambda: record(services, request_id).status is Status.PROCESSING)
            during = client.get(path).text
            worker.result()
        after = client.get(path).text

    assert "No answer yet: the request is processing." in during
    assert "Last attempt&#39;s error" in during  # the 500 stays shown until an answer
    assert "Now it works." in after and "request failed" not in after
    assert "api_error" not in after


def test_a_retry_that_fails_again_fails_the_request_again(runtime, services, fake_anthropic):
    request_id, failure = failed_request(runtime, fake_anthropic, bad_request("first"))
    fake_anthropic.script(bad_request("second"))

    retry(runtime, failure)
    work(runtime)

    again = record(services, request_id)
    assert (again.status, again.attempts) == (Status.FAILED, 2)
    assert again.error == "400 invalid_request_error: second"
    assert again.failed_at is not None
    [second] = new_failures(runtime, failure)
    assert second.exception_class == "BadRequestError"


def test_retrying_the_failed_job_of_a_request_completed_since_does_not_send_it(
    runtime, services, fake_anthropic
):
    request_id, failure = failed_request(runtime, fake_anthropic, bad_request())
    services.requests.reopened(request_id)
    services.requests.processing(request_id)
    services.requests.completed(request_id, Response("Answered elsewhere.", None, Usage(), 0.0))

    retry(runtime, failure)
    assert work(runtime) == 0

    assert len(fake_anthropic.received) == 1
    done = record(services, request_id)
    assert (done.status, done.response_text) == (Status.COMPLETED, "Answered elsewhere.")
    assert new_failures(runtime, failure) == []


@pytest.mark.parametrize("status", [Status.CANCELLED, Status.EXPIRED])
def test_only_a_failed_request_is_reopened(services, runtime, fake_anthropic, status):
    request_id, _ = failed_request(runtime, fake_anthropic, bad_request())
    assert services.requests.reopened(request_id) is not None
    assert services.requests.reopened(request_id) is None  # pending now: once only
    if status is Status.CANCELLED:
        services.requests.cancelled(request_id)
    else:
        services.requests.expired_one(request_id, "no longer wanted")

    assert services.requests.reopened(request_id) is None
    assert record(services, request_id).status is status


def test_two_retries_of_one_failed_job_send_the_request_once(runtime, services, fake_anthropic):
    request_id, failure = failed_request(runtime, fake_anthropic, bad_request())

    retry(runtime, failure)
    retry(runtime, failure)
    work(runtime)

    assert len(fake_anthropic.received) == 2  # the first try, and one retry
    assert record(services, request_id).status is Status.COMPLETED
    assert new_failures(runtime, failure) == []


def test_two_retries_running_at_once_send_the_request_once(
    runtime, services, fake_anthropic, monkeypatch
):
    """The second waits while the first sends (released, without using a try, also when it
    runs between the first's claim and its reopening), then ends as the request did."""
    monkeypatch.setattr(core.claude.job, "RETRY_WAIT_S", 0.05)
    request_id, failure = failed_request(runtime, fake_anthropic, bad_request())
    fake_anthropic.script(slow(0.5, success("Slowly.")))

    retry(runtime, failure)
    retry(runtime, failure)
    options = WorkerOptions(
        queues=CLAUDE_QUEUES, concurrency=2, stop_when_empty=True, defaults=WorkerDefaults()
    )
    keys = runtime.settings.signing_keys()
    queue = runtime.queue()

    def ran_until_both_ended() -> bool:
        """A worker stops when nothing is ready: the second may be waiting, released."""
        worker = Worker(queue, lambda: runtime.failed_store, registry, keys, options)
        off_the_main_thread(worker.run, handle_signals=False)
        return not any(queue.size(name) for name in CLAUDE_QUEUES)

    wait_until(ran_until_both_ended, message="a retry never ended")

    assert len(fake_anthropic.received) == 2
    done = record(services, request_id)
    assert (done.status, done.response_text) == (Status.COMPLETED, "Slowly.")
    assert new_failures(runtime, failure) == []


def batch_with_a_failed_member(runtime, services, fake_anthropic) -> tuple[str, object]:
    fake_anthropic.script(success("One."), bad_request())
    batch_id = submit_batch([{"prompt": "one"}, {"prompt": "two"}], services=services)
    work_batches(runtime)
    batch = services.dispatcher.workflows.batches.get(batch_id)
    assert (batch.pending_jobs, batch.failed_jobs, batch.finished) == (1, 1, True)
    [failure] = runtime.failed_store.list()
    return batch_id, failure


def test_a_batch_member_retried_and_answered_leaves_its_batch_all_done(
    runtime, services, fake_anthropic
):
    batch_id, failure = batch_with_a_failed_member(runtime, services, fake_anthropic)

    retry(runtime, failure)
    retry(runtime, failure)  # a second click: counted once
    work_batches(runtime)

    batch = services.dispatcher.workflows.batches.get(batch_id)
    assert (batch.pending_jobs, batch.failed_jobs) == (0, 0)
    counts = services.requests.counts(batch_id=batch_id)
    assert (counts[Status.COMPLETED], counts[Status.FAILED]) == (2, 0)
    assert len(fake_anthropic.received) == 3


def test_a_batch_member_retried_twice_and_failing_again_stays_counted_failed(
    runtime, services, fake_anthropic
):
    batch_id, failure = batch_with_a_failed_member(runtime, services, fake_anthropic)
    fake_anthropic.script(bad_request("again"))

    retry(runtime, failure)
    retry(runtime, failure)
    work_batches(runtime)

    batch = services.dispatcher.workflows.batches.get(batch_id)
    assert (batch.pending_jobs, batch.failed_jobs) == (1, 1)
    counts = services.requests.counts(batch_id=batch_id)
    assert (counts[Status.COMPLETED], counts[Status.FAILED]) == (1, 1)
    assert len(fake_anthropic.received) == 3
    classes = sorted(row.exception_class for row in new_failures(runtime, failure))
    assert classes == ["BadRequestError", "RetryTakenError"]
