"""Batches through the Message Batches API, end to end: the real SDK against the fake API's
batch endpoints, real Redis and SQL, a real worker for the creating job, and the poll that
the scheduler runs."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from core.alert_channels import signature
from core.claude import message_batches
from core.claude.batches import (
    batch_progress,
    cancel_batch,
    retried_as,
    retry_failed_requests,
    retry_id_of,
    submit_batch,
)
from core.claude.message_batches import EXPIRED, GONE, JOB_NAME, claude_options, poll
from core.claude.records import Status
from core.runtime import Runtime
from core.scheduler import start_scheduler, stop_scheduler
from tests.claude.batch_worker import work_batches
from tests.claude.fake_anthropic import bad_request, rate_limited, success
from tests.conftest import wait_until
from tests.receivers import HttpReceiver

BATCHES = "/v1/messages/batches"
THREE = [{"prompt": "one"}, {"prompt": "two", "system": "Be brief."}, {"prompt": "three"}]
SECRET = "whsec-for-tests"
CLAUDE_TASKS = {"claude-expiry", "claude-message-batches"}


@pytest.fixture
def large(configure):
    """Three prompts make a large batch."""
    return configure(batch_api_threshold=3)


def created(runtime, services, fake_anthropic, **submitted) -> tuple[str, list[str]]:
    """Submit THREE and let the worker hand them to the fake API; the batch and request ids,
    in the order of the prompts."""
    batch_id = submit_batch(THREE, **submitted)
    assert work_batches(runtime) == 0
    by_text = {r.messages[0]["content"]: r.id for r in services.requests.list(batch_id=batch_id)}
    return batch_id, [by_text[prompt["prompt"]] for prompt in THREE]


def statuses(services, ids: list[str]) -> list[Status]:
    return [services.requests.get(request_id).status for request_id in ids]


def skyline_batch(services, batch_id: str):
    return services.dispatcher.workflows.batches.get(batch_id)


def test_at_the_threshold_the_requests_go_to_anthropic_as_one_message_batch(
    runtime, large, fake_anthropic
):
    batch_id = submit_batch(THREE, owner="team-a")
    waiting = batch_progress(batch_id)
    assert (waiting["mode"], waiting["pending"], waiting["message_batch_id"]) == (
        "message_batches",
        3,
        None,
    )

    assert work_batches(runtime) == 0

    [sent] = fake_anthropic.bodies(BATCHES)
    stored = {r.id: r for r in large.requests.list(batch_id=batch_id)}
    assert {entry["custom_id"] for entry in sent["requests"]} == set(stored)
    by_id = {entry["custom_id"]: entry["params"] for entry in sent["requests"]}
    two = next(r for r in stored.values() if r.system)
    assert by_id[two.id] == {
        "model": "claude-sonnet-4-6",
        "messages": [{"role": "user", "content": "two"}],
        "max_tokens": 1024,
        "system": "Be brief.",
    }
    assert fake_anthropic.bodies() == []  # nothing went through the Messages API
    assert {(r.status, r.attempts) for r in large.requests.list(batch_id=batch_id)} == {
        (Status.PROCESSING, 1)
    }
    message_batch = fake_anthropic.message_batches.only()
    progress = batch_progress(batch_id)
    assert (progress["processing"], progress["message_batch_id"]) == (3, message_batch.id)
    assert skyline_batch(large, batch_id).total_jobs == 3


def test_a_second_run_of_the_creating_job_sends_nothing_again(runtime, large, fake_anthropic):
    batch_id, _ = created(runtime, large, fake_anthropic)

    message_batches.create_message_batch(batch_id, "again", {})

    assert len(fake_anthropic.bodies(BATCHES)) == 1


def test_results_come_in_once_anthropic_has_ended_the_batch_at_half_the_price(
    runtime, large, fake_anthropic
):
    batch_id, (one, two, three) = created(runtime, large, fake_anthropic)
    assert poll(large) == []  # still in progress
    assert statuses(large, [one, two, three]) == [Status.PROCESSING] * 3

    fake_anthropic.message_batches.end(
        outcomes={
            one: success("Uno.", input_tokens=1000, output_tokens=100),
            two: bad_request("messages: text content blocks must be non-empty"),
            three: "expired",
        }
    )
    assert poll(large) == [batch_id]

    answered = large.requests.get(one)
    assert (answered.status, answered.response_text, answered.usage.output_tokens) == (
        Status.COMPLETED,
        "Uno.",
        100,
    )
    assert answered.cost_usd == pytest.approx((1000 * 3 + 100 * 15) / 1e6 / 2)
    refused, ran_out = large.requests.get(two), large.requests.get(three)
    assert (refused.status, refused.error) == (
        Status.FAILED,
        "invalid_request_error: messages: text content blocks must be non-empty",
    )
    assert (ran_out.status, ran_out.error) == (Status.EXPIRED, EXPIRED)
    record = skyline_batch(large, batch_id)
    assert (record.finished, record.failed_jobs) == (True, 2)
    assert batch_progress(batch_id)["percentage"] == 100.0
    assert poll(large) == []  # nothing open any more


def test_a_batch_that_ran_out_of_its_24_hours_expires_the_requests_it_did_not_process(
    runtime, large, fake_anthropic
):
    batch_id, (one, two, three) = created(runtime, large, fake_anthropic)
    fake_anthropic.message_batches.end(outcomes={one: success("made it")}, expired=True)

    assert poll(large) == [batch_id]

    assert statuses(large, [one, two, three]) == [
        Status.COMPLETED,
        Status.EXPIRED,
        Status.EXPIRED,
    ]
    assert skyline_batch(large, batch_id).finished


def test_a_batch_anthropic_no_longer_has_expires_what_was_left(runtime, large, fake_anthropic):
    batch_id, ids = created(runtime, large, fake_anthropic)
    fake_anthropic.message_batches.batches.clear()

    assert poll(large) == [batch_id]

    assert statuses(large, ids) == [Status.EXPIRED] * 3
    assert {large.requests.get(i).error for i in ids} == {GONE}
    assert skyline_batch(large, batch_id).finished


def test_cancel_asks_anthropic_and_keeps_the_answers_it_had_already_given(
    runtime, large, fake_anthropic
):
    batch_id, (one, two, three) = created(runtime, large, fake_anthropic, owner="team-a")

    assert cancel_batch(batch_id, owner="team-b") == 0
    assert cancel_batch(batch_id, owner="team-a") == 3

    assert fake_anthropic.message_batches.only().processing_status == "canceling"
    assert skyline_batch(large, batch_id).cancelled
    fake_anthropic.message_batches.end(outcomes={one: success("answered before the cancel")})
    assert poll(large) == [batch_id]
    assert statuses(large, [one, two, three]) == [
        Status.COMPLETED,
        Status.CANCELLED,
        Status.CANCELLED,
    ]
    assert skyline_batch(large, batch_id).finished


def test_cancelled_before_anthropic_took_it_no_batch_is_sent(runtime, large, fake_anthropic):
    batch_id = submit_batch(THREE)

    assert cancel_batch(batch_id) == 3
    assert work_batches(runtime) == 0

    assert fake_anthropic.received == []
    assert batch_progress(batch_id)["cancelled"] == 3


def test_a_429_when_creating_brings_the_job_back_and_the_batch_is_created(
    runtime, large, fake_anthropic
):
    fake_anthropic.script(rate_limited(0))

    batch_id, ids = created(runtime, large, fake_anthropic)

    assert len(fake_anthropic.bodies(BATCHES)) == 2
    assert skyline_batch(large, batch_id).total_jobs == 3
    assert statuses(large, ids) == [Status.PROCESSING] * 3
    assert runtime.failed_store.list() == []


def test_a_batch_anthropic_refuses_fails_its_requests_and_still_sends_the_batch_webhook(
    runtime, configure, fake_anthropic
):
    services = configure(batch_api_threshold=3, webhook_secret=SecretStr(SECRET))
    fake_anthropic.script(bad_request("requests: too many requests"))
    receiver = HttpReceiver()
    try:
        batch_id, ids = created(runtime, services, fake_anthropic, webhook_url=receiver.url("/b"))
    finally:
        receiver.close()

    assert statuses(services, ids) == [Status.FAILED] * 3
    assert services.requests.get(ids[0]).error == (
        "could not create the Message Batch: 400 invalid_request_error: requests: too many requests"
    )
    assert skyline_batch(services, batch_id) is None
    [failed_job] = runtime.failed_store.list()
    assert failed_job.job_name == JOB_NAME
    [delivery] = receiver.requests
    assert delivery.headers["X-Skyline-Signature"] == signature(delivery.body, SECRET)
    event = json.loads(delivery.body)
    assert (event["type"], event["failed"], event["mode"]) == (
        "claude.batch.finished",
        3,
        "message_batches",
    )


def test_the_scheduler_polls_open_message_batches(runtime, large, fake_anthropic):
    batch_id, ids = created(runtime, large, fake_anthropic)
    settings = runtime.settings
    claude = large.claude.model_copy(update={"message_batch_poll_s": 0.2})
    polling = settings.model_copy(
        update={"claude": claude, "app": [*settings.app, "core.claude.job"]}
    )
    scheduler = start_scheduler(Runtime(polling))
    try:
        assert {job.id for job in scheduler.get_jobs()} >= CLAUDE_TASKS
        fake_anthropic.message_batches.end()
        wait_until(
            lambda: statuses(large, ids) == [Status.COMPLETED] * 3,
            message="the scheduler did not import the batch's results",
        )
    finally:
        stop_scheduler(scheduler)
    assert skyline_batch(large, batch_id).finished


def test_without_the_claude_workload_the_scheduler_has_no_claude_tasks(runtime):
    scheduler = start_scheduler(runtime)
    try:
        assert not CLAUDE_TASKS & {job.id for job in scheduler.get_jobs()}
    finally:
        stop_scheduler(scheduler)


def ended_with_failures(runtime, services, fake_anthropic, **submitted) -> tuple[str, list[str]]:
    """THREE sent and ended by Anthropic: the first answered, the second refused, the
    third expired."""
    batch_id, (one, two, three) = created(runtime, services, fake_anthropic, **submitted)
    outcomes = {one: success("Uno."), two: bad_request(), three: "expired"}
    fake_anthropic.message_batches.end(outcomes=outcomes)
    assert poll(services) == [batch_id]
    return batch_id, [one, two, three]


def params_of(body: dict) -> list[dict]:
    return sorted((entry["params"] for entry in body["requests"]), key=json.dumps)


def test_a_retry_sends_the_failed_and_expired_requests_again_as_a_new_batch(
    runtime, configure, fake_anthropic
):
    services = configure(batch_api_threshold=2)  # the two again make a Message Batch too
    batch_id, (one, two, three) = ended_with_failures(
        runtime, services, fake_anthropic, owner="team-a", priority="high", name="nightly"
    )

    retry = retry_failed_requests(batch_id, services=services)

    assert (retry.batch_id, len(retry.requests), retry.already) == (
        retry_id_of(batch_id),
        2,
        False,
    )
    assert work_batches(runtime) == 0
    first, again = fake_anthropic.bodies(BATCHES)
    sent_before = {entry["custom_id"]: entry["params"] for entry in first["requests"]}
    assert params_of(again) == sorted([sent_before[two], sent_before[three]], key=json.dumps)
    assert {entry["custom_id"] for entry in again["requests"]} == set(retry.requests)
    record = skyline_batch(services, retry.batch_id)
    part = claude_options(record)
    assert (record.name, record.total_jobs) == ("nightly (retry)", 2)
    assert (part["retry_of"], part["owner"], part["priority"]) == (batch_id, "team-a", "high")
    assert retried_as(batch_id, services=services) == retry.batch_id
    assert statuses(services, [one, two, three]) == [
        Status.COMPLETED,
        Status.FAILED,
        Status.EXPIRED,
    ], "the originals keep their outcome"

    twice = retry_failed_requests(batch_id, services=services)

    assert (twice.batch_id, twice.requests, twice.already) == (retry.batch_id, [], True)
    assert work_batches(runtime) == 0
    assert len(fake_anthropic.bodies(BATCHES)) == 2, "nothing sent twice"


def test_a_retry_below_the_threshold_runs_as_jobs_and_completes(runtime, large, fake_anthropic):
    batch_id, _ = ended_with_failures(runtime, large, fake_anthropic)

    retry = retry_failed_requests(batch_id, services=large)
    assert work_batches(runtime) == 0

    assert sorted(body["messages"][0]["content"] for body in fake_anthropic.bodies()) == [
        "three",
        "two",
    ]
    assert statuses(large, retry.requests) == [Status.COMPLETED] * 2
    record = skyline_batch(large, retry.batch_id)
    assert (record.finished, record.processed_jobs, record.failed_jobs) == (True, 2, 0)
    assert batch_progress(retry.batch_id)["mode"] == "jobs"


def test_only_an_ended_message_batch_can_be_retried(runtime, large, fake_anthropic):
    batch_id, _ = created(runtime, large, fake_anthropic)
    small = submit_batch([{"prompt": "alone"}])

    with pytest.raises(ValueError, match="has not ended yet"):
        retry_failed_requests(batch_id, services=large)
    with pytest.raises(ValueError, match="is not a Claude batch of the Message Batches API"):
        retry_failed_requests(small, services=large)
    assert len(fake_anthropic.bodies(BATCHES)) == 1
    assert retried_as(batch_id, services=large) is None
