"""The Claude job end to end: the real SDK over HTTP to the fake server, real Redis and SQL,
and a real worker (in this process; the last test runs ``skyline work``)."""

from __future__ import annotations

import time

import pytest

from core.claude import submit
from core.claude.job import process_request
from core.claude.records import Status
from core.execution import JobTimeoutError, MaxAttemptsExceededError
from core.keys import Keys
from tests.claude.conftest import API_KEY, CLAUDE_QUEUES, record, work
from tests.claude.fake_anthropic import (
    bad_request,
    overloaded,
    rate_limited,
    server_error,
    slow,
    success,
    unauthorized,
)


def delayed_until_ms(redis_client, queue: str = "claude-normal") -> list[float]:
    """When each delayed job on ``queue`` becomes available (ms)."""
    key = Keys().queue(queue).delayed
    return [score for _, score in redis_client.zrange(key, 0, -1, withscores=True)]


def test_success_stores_text_usage_and_cost(runtime, services, fake_anthropic):
    fake_anthropic.script(
        success(
            "Paris.",
            input_tokens=1000,
            output_tokens=200,
            cache_creation_input_tokens=100,
            cache_read_input_tokens=50,
        )
    )
    request_id = submit("What is the capital of France?", system="Be brief.", max_tokens=50)

    assert work(runtime) == 0

    done = record(services, request_id)
    assert (done.status, done.response_text, done.stop_reason) == (
        Status.COMPLETED,
        "Paris.",
        "end_turn",
    )
    assert (done.usage.input_tokens, done.usage.output_tokens) == (1000, 200)
    assert (done.usage.cache_creation_input_tokens, done.usage.cache_read_input_tokens) == (100, 50)
    # claude-sonnet-4-6: $3 in, $15 out, $3.75 cache write, $0.30 cache read per million
    assert done.cost_usd == pytest.approx((1000 * 3 + 200 * 15 + 100 * 3.75 + 50 * 0.3) / 1e6)
    assert (done.attempts, done.cached, done.error) == (1, False, None)
    assert done.created_at <= done.started_at <= done.completed_at
    [sent] = fake_anthropic.received
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.body == {
        "model": "claude-sonnet-4-6",
        "messages": [{"role": "user", "content": "What is the capital of France?"}],
        "system": "Be brief.",
        "max_tokens": 50,
    }


def test_each_priority_has_its_queue(runtime, services):
    for priority in ("high", "normal", "low"):
        submit("hi", priority=priority)

    assert [runtime.queue().size(queue) for queue in CLAUDE_QUEUES] == [1, 1, 1]


def test_a_429_gives_its_try_back_and_the_request_completes(runtime, configure, fake_anthropic):
    services = configure(tries=1)
    fake_anthropic.script(rate_limited(0), rate_limited(0), success("done"))
    request_id = submit("hi")

    assert work(runtime) == 0

    done = record(services, request_id)
    assert (done.status, done.response_text, done.attempts) == (Status.COMPLETED, "done", 3)
    assert len(fake_anthropic.received) == 3
    assert runtime.failed_store.list() == []


def test_a_429_uses_a_try_when_configured_so(runtime, configure, fake_anthropic):
    services = configure(tries=2, retry_429_free=False)
    fake_anthropic.script(rate_limited(0), rate_limited(0), success())
    request_id = submit("hi")

    assert work(runtime) == 0

    failed = record(services, request_id)
    assert (failed.status, failed.attempts) == (Status.FAILED, 2)
    assert failed.error.startswith("429 rate_limit_error: Number of request tokens")
    assert len(fake_anthropic.received) == 2


def test_overloaded_twice_then_success_completes_on_the_third_try(
    runtime, services, fake_anthropic
):
    fake_anthropic.script(overloaded(0), overloaded(0), success("finally"))
    request_id = submit("hi")

    assert work(runtime) == 0

    done = record(services, request_id)
    assert (done.status, done.response_text, done.attempts, done.error) == (
        Status.COMPLETED,
        "finally",
        3,
        None,
    )


def test_server_errors_until_tries_run_out_fail_the_request(runtime, services, fake_anthropic):
    fake_anthropic.script(*[server_error()] * 3)
    request_id = submit("hi")

    assert work(runtime) == 0

    failed = record(services, request_id)
    assert (failed.status, failed.attempts) == (Status.FAILED, 3)
    assert failed.error == "500 api_error: Internal server error"
    assert failed.failed_at is not None and failed.completed_at is None
    assert len(fake_anthropic.received) == 3
    [stored] = runtime.failed_store.list()
    assert stored.exception_class == "InternalServerError"


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (bad_request("prompt is too long"), "400 invalid_request_error: prompt is too long"),
        (unauthorized(), "401 authentication_error: invalid x-api-key"),
    ],
)
def test_a_rejected_request_fails_at_once_with_the_api_message(
    runtime, services, fake_anthropic, reply, error
):
    fake_anthropic.script(reply)
    request_id = submit("hi")

    assert work(runtime) == 0

    failed = record(services, request_id)
    assert (failed.status, failed.attempts, failed.error) == (Status.FAILED, 1, error)
    assert len(fake_anthropic.received) == 1
    assert len(runtime.failed_store.list()) == 1


def test_the_release_waits_as_long_as_retry_after_says(
    runtime, services, fake_anthropic, redis_client
):
    fake_anthropic.script(rate_limited(30))
    request_id = submit("hi")

    before_ms = time.time() * 1000
    assert work(runtime) == 0  # the job waits in the delayed set, so the queue is empty
    after_ms = time.time() * 1000

    [available_at] = delayed_until_ms(redis_client)
    assert before_ms + 30_000 <= available_at <= after_ms + 30_000
    waiting = record(services, request_id)
    assert (waiting.status, waiting.attempts) == (Status.PROCESSING, 1)
    assert waiting.error.startswith("429 rate_limit_error")


def test_without_retry_after_the_release_follows_the_backoff(
    runtime, configure, fake_anthropic, redis_client
):
    configure(backoff=[7, 60])
    fake_anthropic.script(overloaded(retry_after=None))
    submit("hi")

    before_ms = time.time() * 1000
    assert work(runtime) == 0
    after_ms = time.time() * 1000

    [available_at] = delayed_until_ms(redis_client)
    assert before_ms + 7_000 <= available_at <= after_ms + 7_000


def test_a_timed_out_call_is_retried(runtime, configure, fake_anthropic):
    services = configure(timeout_s=0.3)
    fake_anthropic.script(slow(2.0), success("second time"))
    request_id = submit("hi")

    assert work(runtime) == 0

    done = record(services, request_id)
    assert (done.status, done.response_text, done.attempts) == (
        Status.COMPLETED,
        "second time",
        2,
    )


def test_an_unreachable_api_is_retried_then_failed(runtime, configure, fake_anthropic):
    services = configure(base_url="http://127.0.0.1:1", tries=2)
    request_id = submit("hi")

    assert work(runtime) == 0

    failed = record(services, request_id)
    assert (failed.status, failed.attempts) == (Status.FAILED, 2)
    assert failed.error.startswith("could not reach the API")


def test_an_identical_request_is_answered_from_the_cache(runtime, services, fake_anthropic):
    fake_anthropic.script(success("42", input_tokens=10, output_tokens=1))
    first = submit("The answer?", temperature=0)
    work(runtime)
    second = submit("The answer?", temperature=0)
    work(runtime)

    assert len(fake_anthropic.received) == 1
    original, reused = record(services, first), record(services, second)
    assert (original.cached, reused.cached) == (False, True)
    assert (reused.status, reused.response_text, reused.stop_reason) == (
        Status.COMPLETED,
        "42",
        "end_turn",
    )
    assert (reused.usage.input_tokens, reused.cost_usd) == (0, 0.0)


@pytest.mark.parametrize(("cache_nonzero_temperature", "calls"), [(False, 2), (True, 1)])
def test_a_request_with_temperature_is_cached_only_when_configured(
    runtime, configure, fake_anthropic, cache_nonzero_temperature, calls
):
    configure(cache_nonzero_temperature=cache_nonzero_temperature)
    submit("A poem?", temperature=0.7)
    work(runtime)
    submit("A poem?", temperature=0.7)
    work(runtime)

    assert len(fake_anthropic.received) == calls


def test_a_cancelled_request_is_not_sent(runtime, services, fake_anthropic):
    request_id = submit("never mind")
    services.requests.cancelled(request_id)

    assert work(runtime) == 0

    assert fake_anthropic.received == []
    assert record(services, request_id).status is Status.CANCELLED
    assert runtime.queue().size("claude-normal") == 0


def test_out_of_tries_the_record_keeps_the_last_attempts_error(runtime, services):
    request_id = submit("hi")
    services.requests.processing(request_id)
    services.requests.retrying(request_id, "529 overloaded_error: Overloaded")

    process_request.definition.on_failed(MaxAttemptsExceededError("too many tries"), request_id)

    failed = record(services, request_id)
    assert (failed.status, failed.error) == (Status.FAILED, "529 overloaded_error: Overloaded")


def test_a_job_that_timed_out_fails_its_request_saying_so(runtime, services):
    request_id = submit("hi")
    services.requests.processing(request_id)
    services.requests.retrying(request_id, "500 api_error: Internal server error")

    process_request.definition.on_failed(JobTimeoutError("ran longer than 725 s"), request_id)

    failed = record(services, request_id)
    assert (failed.status, failed.error) == (
        Status.FAILED,
        "JobTimeoutError: ran longer than 725 s",
    )


def test_skyline_work_runs_the_claude_job_through_429_and_529(
    runtime, services, fake_anthropic, claude_worker_env, skyline
):
    fake_anthropic.script(rate_limited(0), overloaded(0), success("from a worker process"))
    request_id = submit("hi")

    result = skyline("work", ",".join(CLAUDE_QUEUES), "--stop-when-empty")

    assert result.returncode == 0, result.stderr
    done = record(services, request_id)
    assert (done.status, done.response_text, done.attempts) == (
        Status.COMPLETED,
        "from a worker process",
        3,
    )
