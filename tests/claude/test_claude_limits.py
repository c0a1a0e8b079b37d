"""The job's limiter over the shared Redis budget: real Redis, the real SDK against the fake
server, and real ``skyline work`` processes for the rates the API sees."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import core.claude.api  # noqa: F401  (the SDK takes seconds to import: not inside a timed job)
from core.claude import submit
from core.claude.cost import Usage
from core.claude.job import NoLimit, limiter_for
from core.claude.limits import ADMISSION_MARGIN_MS, MIN_RELEASE_S, SharedLimiter, shared_limiter
from core.claude.records import Status
from core.claude.settings import ModelSettings
from core.keys import Keys
from tests.claude.conftest import CLAUDE_QUEUES, off_the_main_thread, record, work
from tests.conftest import wait_until

MODEL = "claude-sonnet-4-6"
OTHER = "claude-haiku-4-5"
QUICK_S = 0.05  # how long a test's limiter waits in-process before giving up


def models(**limits: int) -> dict[str, ModelSettings]:
    """Sonnet with these per-window limits, Haiku without any."""
    return {
        MODEL: ModelSettings(input_usd_per_mtok=3, output_usd_per_mtok=15, **limits),
        OTHER: ModelSettings(input_usd_per_mtok=1, output_usd_per_mtok=5),
    }


def no_requests_left_for(seconds: float) -> dict[str, str]:
    """The API's headers when the requests budget is spent until ``seconds`` from now."""
    reset = (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
    return {
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": reset,
    }


def acquire(limiter: SharedLimiter, model: str, estimate: int, max_tokens: int) -> float:
    coroutine = limiter.acquire(model, estimate, max_tokens)
    return off_the_main_thread(asyncio.run, coroutine)


@pytest.fixture
def limited(configure):
    """``limited(**limits)``: a fresh SharedLimiter per call, as each job run gets one."""

    def build(window_s: float = 60, **limits: int) -> Any:
        services = configure(models=models(**limits), rate_limit_window_s=window_s)
        limiter = shared_limiter(services)
        assert limiter is not None
        return lambda: SharedLimiter(limiter.limiter, limiter.settings, QUICK_S)

    return build


def test_the_job_gets_the_shared_limiter_only_when_a_model_has_limits(services, configure):
    assert isinstance(limiter_for(services), NoLimit)

    assert isinstance(limiter_for(configure(models=models(requests_per_minute=5))), SharedLimiter)


def test_max_tokens_are_reserved_until_the_usage_settles_them(limited):
    fresh = limited(output_tokens_per_minute=1000)
    first, second = fresh(), fresh()

    assert acquire(first, MODEL, 10, 800) == 0
    assert acquire(second, MODEL, 10, 800) >= MIN_RELEASE_S  # 1600 > 1000: not yet

    first.record(MODEL, Usage(input_tokens=10, output_tokens=150), {})

    assert acquire(second, MODEL, 10, 800) == 0  # 150 + 800 fit


def test_an_unanswered_request_gives_its_tokens_back_but_keeps_its_place(limited):
    fresh = limited(requests_per_minute=2, input_tokens_per_minute=100)
    first = fresh()
    assert acquire(first, MODEL, 90, 1) == 0

    first.record(MODEL, None, {})

    assert acquire(fresh(), MODEL, 90, 1) == 0  # the 90 input tokens came back
    assert acquire(fresh(), MODEL, 1, 1) > 0  # but two requests are in the window


def test_a_model_without_limits_never_touches_redis(limited, redis_client):
    limiter = limited(requests_per_minute=1)()

    assert [acquire(limiter, OTHER, 10, 10) for _ in range(3)] == [0, 0, 0]
    limiter.record(OTHER, Usage(10, 10), {"anthropic-ratelimit-requests-remaining": "0"})

    assert redis_client.keys(Keys().claude_budget("*", "*")) == []


def test_the_apis_rate_limit_headers_lower_the_budget_until_their_reset(limited):
    fresh = limited(requests_per_minute=50)
    first = fresh()
    assert acquire(first, MODEL, 10, 10) == 0

    first.record(MODEL, Usage(10, 10), no_requests_left_for(20))

    assert 18 < acquire(fresh(), MODEL, 10, 10) <= 20


def test_a_request_bigger_than_a_whole_window_waits_for_an_empty_one(limited):
    fresh = limited(input_tokens_per_minute=100)

    assert acquire(fresh(), MODEL, 500, 10) == 0  # reserves the whole 100, not an error
    assert acquire(fresh(), MODEL, 1, 10) > 0


def test_a_job_without_budget_is_released_without_using_a_try_and_comes_back(
    runtime, configure, fake_anthropic, redis_client
):
    services = configure(models=models(requests_per_minute=1), rate_limit_window_s=1)
    limiter = shared_limiter(services)
    assert acquire(limiter, MODEL, 1, 1) == 0  # the window's one request is taken
    request_id = submit("hi")

    before_ms = time.time() * 1000
    assert work(runtime) == 0  # waits half a window in the worker, then is released

    waiting = record(services, request_id)
    assert (waiting.status, waiting.attempts, fake_anthropic.received) == (Status.PENDING, 0, [])
    delayed = Keys().queue("claude-normal").delayed
    [(payload, due_ms)] = redis_client.zrange(delayed, 0, -1, withscores=True)
    # Taken for a window and the margin; waited half a window here: released for the rest.
    assert before_ms + 1000 < due_ms <= before_ms + 1000 + ADMISSION_MARGIN_MS
    assert json.loads(payload)["attempts"] == 0
    wait_until(lambda: time.time() * 1000 >= due_ms, timeout_s=5)
    assert work(runtime) == 0
    done = record(services, request_id)
    assert (done.status, done.attempts, len(fake_anthropic.received)) == (Status.COMPLETED, 1, 1)


# -- several worker processes against the fake API ---------------------------------------------

WINDOW_S = 1.0
PER_WINDOW = 3
REQUESTS = 9
WORKERS = 3


def busiest_window(times: list[float], window_s: float) -> int:
    """Most requests that arrived within any ``window_s`` (the busiest starts at one)."""
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + window_s) for i, start in enumerate(times))


@pytest.mark.slow
def test_worker_processes_keep_the_requests_the_api_sees_under_the_limit(
    runtime, services, fake_anthropic, claude_worker_env, start_worker
):
    with open(claude_worker_env["SKYLINE_CONFIG"], "a") as config:
        config.write(
            f"rate_limit_window_s = {WINDOW_S}\n"
            f"[claude.models.{MODEL}]\n"
            "input_usd_per_mtok = 3.0\noutput_usd_per_mtok = 15.0\n"
            f"requests_per_minute = {PER_WINDOW}\n"
        )
    ids = [submit(f"question {n}") for n in range(REQUESTS)]

    for _ in range(WORKERS):
        start_worker(",".join(CLAUDE_QUEUES))
    wait_until(
        lambda: services.requests.count(status=Status.COMPLETED) == REQUESTS,
        timeout_s=60,
        message="the workers did not answer every request",
    )

    arrived = [r.at for r in fake_anthropic.received]
    assert len(arrived) == REQUESTS  # no request was refused and sent again
    assert busiest_window(arrived, WINDOW_S) <= PER_WINDOW
    # Three windows' worth: the limiter held them back rather than letting them through.
    assert max(arrived) - min(arrived) >= (REQUESTS / PER_WINDOW - 1) * WINDOW_S
    assert {record(services, i).attempts for i in ids} == {1}
