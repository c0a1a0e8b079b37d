"""The SDK boundary: a call to the fake server, what errors mean, reading ``retry-after``."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.utils import format_datetime

import anthropic
import httpx2
import pytest

from core.claude.api import Action, create_message, judge, retry_after_s
from core.claude.records import ClaudeRequestRepository, NewRequest
from tests.claude.conftest import off_the_main_thread
from tests.claude.fake_anthropic import rate_limited, success

MESSAGES = [{"role": "user", "content": "hi"}]
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC).timestamp()
REQUEST = httpx2.Request("POST", "http://127.0.0.1/v1/messages")


def status_error(status: int, error_type: str, headers: dict[str, str] | None = None):
    body = {"type": "error", "error": {"type": error_type, "message": "the API says no"}}
    response = httpx2.Response(status, json=body, headers=headers or {}, request=REQUEST)
    client = anthropic.Anthropic(api_key="k", base_url="http://127.0.0.1")
    return client._make_status_error_from_response(response)


@pytest.mark.parametrize(
    ("status", "error_type", "action"),
    [
        (429, "rate_limit_error", Action.RATE_LIMITED),
        (529, "overloaded_error", Action.OVERLOADED),
        (500, "api_error", Action.RETRY),
        (503, "api_error", Action.RETRY),
        (408, "timeout_error", Action.RETRY),
        (400, "invalid_request_error", Action.FAIL),
        (401, "authentication_error", Action.FAIL),
        (403, "permission_error", Action.FAIL),
        (404, "not_found_error", Action.FAIL),
        (413, "request_too_large", Action.FAIL),
        (422, "invalid_request_error", Action.FAIL),
    ],
)
def test_each_status_has_its_action(status, error_type, action):
    judgement = judge(status_error(status, error_type))

    assert judgement.action is action
    assert judgement.error == f"{status} {error_type}: the API says no"


def test_network_errors_and_surprises_are_retried():
    assert judge(anthropic.APITimeoutError(REQUEST)).action is Action.RETRY
    assert judge(anthropic.APIConnectionError(request=REQUEST)).action is Action.RETRY
    assert judge(KeyError("content")).action is Action.RETRY


def test_the_judgement_carries_retry_after_and_the_headers():
    judgement = judge(status_error(429, "rate_limit_error", {"retry-after": "12"}))

    assert judgement.retry_after_s == 12
    assert judgement.headers["retry-after"] == "12"


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": format_datetime(datetime.fromtimestamp(NOW + 30, UTC), usegmt=True)}, 30),
        ({"retry-after": "-3"}, 0.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_seconds_milliseconds_and_dates(headers, seconds):
    assert retry_after_s(headers, now=NOW) == seconds


def test_an_answer_carries_the_rate_limit_headers(settings, engine, fake_anthropic):
    fake_anthropic.script(success("one", input_tokens=100, output_tokens=10))
    request = ClaudeRequestRepository(engine).create(
        NewRequest(model="claude-haiku-4-5", messages=MESSAGES, max_tokens=10, temperature=0)
    )

    answer = off_the_main_thread(asyncio.run, create_message(settings.claude, request))

    assert (answer.text, answer.usage.input_tokens, answer.usage.output_tokens) == ("one", 100, 10)
    assert answer.headers["request-id"].startswith("req_")
    assert answer.headers["anthropic-ratelimit-requests-limit"] == "50"
    assert answer.headers["anthropic-ratelimit-requests-remaining"] == "49"
    assert answer.headers["anthropic-ratelimit-input-tokens-remaining"] == "29900"
    assert answer.headers["anthropic-ratelimit-output-tokens-remaining"] == "7990"
    assert answer.headers["anthropic-ratelimit-output-tokens-reset"].endswith("Z")


def test_a_429_from_the_server_carries_retry_after_and_no_budget_left(
    settings, engine, fake_anthropic
):
    fake_anthropic.script(rate_limited(3))
    request = ClaudeRequestRepository(engine).create(
        NewRequest(model="claude-haiku-4-5", messages=MESSAGES, max_tokens=10, temperature=0)
    )

    with pytest.raises(anthropic.RateLimitError) as caught:
        off_the_main_thread(asyncio.run, create_message(settings.claude, request))

    judgement = judge(caught.value)
    assert (judgement.action, judgement.retry_after_s) == (Action.RATE_LIMITED, 3)
    assert judgement.headers["anthropic-ratelimit-requests-remaining"] == "0"
