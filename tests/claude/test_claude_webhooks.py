"""Request webhooks end to end: the real SDK against the fake API, a real worker, and a real
HTTP receiver on loopback that checks what arrives."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr

from core.alert_channels import signature
from core.claude import submit
from core.claude.webhooks import DELIVERY_HEADER, REQUEST_JOB
from tests.claude.conftest import record, work
from tests.claude.fake_anthropic import bad_request, success
from tests.receivers import HttpReceiver, Request

SECRET = "whsec-for-tests"


class FailsFirst(HttpReceiver):
    """Answers the first delivery with a 500, the later ones with a 200."""

    @property
    def status(self) -> int:
        return 500 if len(self.requests) <= 1 else 200

    @status.setter
    def status(self, value: int) -> None:
        """HttpReceiver sets a fixed status; this one decides per request."""


@pytest.fixture
def receiver():
    receiver = HttpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def signing(configure):
    return configure(webhook_secret=SecretStr(SECRET))


def verified(delivery: Request) -> dict[str, Any]:
    """The event, once its signature checks out as a receiver would check it."""
    assert delivery.headers["X-Skyline-Signature"] == signature(delivery.body, SECRET)
    assert delivery.headers["Content-Type"] == "application/json"
    return json.loads(delivery.body)


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_a_completed_request_posts_a_signed_event(runtime, signing, fake_anthropic, receiver):
    fake_anthropic.script(success("Paris.", input_tokens=10, output_tokens=2))
    request_id = submit("Capital of France?", webhook_url=receiver.url("/hooks/claude"))

    assert work(runtime) == 0

    [delivery] = receiver.requests
    assert delivery.path == "/hooks/claude"
    assert delivery.headers["X-Skyline-Event"] == "claude.request.completed"
    done = record(signing, request_id)
    assert verified(delivery) == {
        "type": "claude.request.completed",
        "request_id": request_id,
        "status": "completed",
        "model": "claude-sonnet-4-6",
        "response": "Paris.",
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 10,
            "output_tokens": 2,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
        },
        "cost_usd": done.cost_usd,
        "cached": False,
        "error": None,
        "attempts": 1,
        "batch_id": None,
        "timestamp": iso(done.completed_at),
    }
    assert done.cost_usd == pytest.approx((10 * 3 + 2 * 15) / 1e6)


def test_a_receiver_that_fails_gets_the_event_again_from_the_retried_job(
    runtime, signing, fake_anthropic
):
    receiver = FailsFirst()
    try:
        submit("hi", webhook_url=receiver.url("/hook"))
        assert work(runtime) == 0
    finally:
        receiver.close()

    first, second = receiver.requests
    assert verified(first) == verified(second)
    assert first.headers[DELIVERY_HEADER] == second.headers[DELIVERY_HEADER]
    assert runtime.failed_store.list() == []


def test_a_failed_request_posts_the_apis_error(runtime, signing, fake_anthropic, receiver):
    fake_anthropic.script(bad_request("prompt is too long"))
    request_id = submit("hi", webhook_url=receiver.url("/hook"))

    assert work(runtime) == 0

    [delivery] = receiver.requests
    event = verified(delivery)
    assert (event["type"], event["request_id"], event["response"]) == (
        "claude.request.failed",
        request_id,
        None,
    )
    assert event["error"] == "400 invalid_request_error: prompt is too long"
    assert event["timestamp"] == iso(record(signing, request_id).failed_at)


def test_a_host_taken_off_the_allow_list_is_not_posted_to(
    runtime, configure, fake_anthropic, receiver
):
    secret = SecretStr(SECRET)
    configure(webhook_secret=secret, webhook_hosts=["127.0.0.1"])
    request_id = submit("hi", webhook_url=receiver.url("/hook"))
    services = configure(webhook_secret=secret, webhook_hosts=["hooks.example.com"])

    assert work(runtime) == 0

    assert receiver.requests == []
    assert record(services, request_id).status == "completed"
    [refused] = runtime.failed_store.list()
    assert refused.job_name == REQUEST_JOB
    assert "host '127.0.0.1' is not allowed" in refused.message


def test_without_a_secret_to_sign_with_nothing_is_sent(runtime, services, receiver):
    submit("hi", webhook_url=receiver.url("/hook"))

    assert work(runtime) == 0

    assert receiver.requests == []
    [refused] = runtime.failed_store.list()
    assert "set [claude] webhook_secret" in refused.message


def test_a_cancelled_request_posts_nothing(runtime, signing, receiver):
    request_id = submit("never mind", webhook_url=receiver.url("/hook"))
    signing.requests.cancelled(request_id)

    assert work(runtime) == 0

    assert receiver.requests == []
