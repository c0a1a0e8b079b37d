"""Submitting requests: validation that names each bad field, storing, queueing."""

from __future__ import annotations

import pytest

from core.claude import RequestValidationError, submit
from core.claude.records import Status
from core.claude.settings import ClaudeSettings
from core.claude.submission import MAX_PROMPT_CHARS, validate
from tests.claude.conftest import record

SETTINGS = ClaudeSettings(webhook_hosts=["hooks.example.com"])


def problems(**fields) -> dict[str, str]:
    with pytest.raises(RequestValidationError) as caught:
        validate(SETTINGS, **({"prompt": "hi"} | fields))
    return caught.value.errors


def test_validation_names_every_bad_field_at_once():
    errors = problems(
        prompt="",
        model="gpt-4",
        max_tokens=0,
        temperature=1.5,
        priority="urgent",
        webhook_url="ftp://hooks.example.com/x",
    )

    assert set(errors) == {
        "prompt",
        "model",
        "max_tokens",
        "temperature",
        "priority",
        "webhook_url",
    }
    assert errors["prompt"] == "the prompt is required"
    assert "claude-sonnet-4-6" in errors["model"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, "prompt"),
        ({"prompt": None}, "prompt"),
        ({"prompt": 42}, "prompt"),
        ({"max_tokens": 200_001}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"temperature": "0.5"}, "temperature"),
        ({"webhook_url": "https://elsewhere.example.com/x"}, "webhook_url"),
        ({"webhook_url": "https:///no-host"}, "webhook_url"),
        ({"system": "x" * (MAX_PROMPT_CHARS + 1)}, "system"),
        ({"owner": "x" * 256}, "owner"),
        ({"prompt": None, "messages": []}, "messages"),
        ({"prompt": None, "messages": [{"role": "system", "content": "hi"}]}, "messages"),
        ({"prompt": None, "messages": [{"role": "user", "content": [{"no": "type"}]}]}, "messages"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "prompt"),
    ],
)
def test_each_rule_names_its_field(fields, field):
    assert list(problems(**fields)) == [field]


def test_the_limits_themselves_are_allowed():
    request = validate(
        SETTINGS,
        prompt="x" * MAX_PROMPT_CHARS,
        max_tokens=200_000,
        temperature=0,
        webhook_url="https://HOOKS.example.com/done",
    )

    assert (request.max_tokens, request.temperature) == (200_000, 0.0)


def test_a_prompt_becomes_one_user_message_and_messages_stay_as_given():
    conversation = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": [{"type": "text", "text": "How are you?"}]},
    ]

    assert validate(SETTINGS, prompt="Hi").messages == [{"role": "user", "content": "Hi"}]
    assert validate(SETTINGS, messages=conversation).messages == conversation


def test_submit_stores_the_request_and_queues_it_by_priority(runtime, services):
    request_id = submit("hi", owner="team-a", priority="low", max_tokens=10)

    stored = record(services, request_id)
    assert (stored.status, stored.owner, stored.priority, stored.model) == (
        Status.PENDING,
        "team-a",
        "low",
        "claude-sonnet-4-6",
    )
    assert runtime.queue().size("claude-low") == 1


def test_an_invalid_request_is_neither_stored_nor_queued(runtime, services):
    with pytest.raises(RequestValidationError, match="max_tokens"):
        submit("hi", max_tokens=0)

    assert services.requests.count() == 0
    assert runtime.queue().size("claude-normal") == 0
