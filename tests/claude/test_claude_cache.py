"""The response cache on real Redis: what counts as the same request, TTL and policy."""

from __future__ import annotations

import dataclasses

import pytest

from core.claude.cache import CachedResponse, ResponseCache, request_digest
from core.claude.records import ClaudeRequestRepository, NewRequest
from core.claude.settings import ClaudeSettings
from core.keys import Keys

REQUEST = NewRequest(
    model="claude-sonnet-4-6",
    messages=[{"role": "user", "content": "The answer?"}],
    max_tokens=100,
    temperature=0.0,
    system="Be brief.",
)


@pytest.fixture
def stored(engine):
    """Store a request like REQUEST with ``changes``; returns its record."""
    requests = ClaudeRequestRepository(engine)
    return lambda **changes: requests.create(dataclasses.replace(REQUEST, **changes))


def cache(redis_client, **settings) -> ResponseCache:
    return ResponseCache(redis_client, Keys(), ClaudeSettings(**settings))


def test_requests_that_differ_only_in_who_sent_them_share_a_digest(stored):
    one = stored(owner="ann", priority="high")
    other = stored(owner="bob", batch_id="b1", webhook_url="https://example.com/hook")

    assert request_digest(one) == request_digest(other)


@pytest.mark.parametrize(
    "change",
    [
        {"model": "claude-haiku-4-5"},
        {"messages": [{"role": "user", "content": "Another question?"}]},
        {"system": None},
        {"max_tokens": 101},
        {"temperature": 0.5},
    ],
)
def test_each_part_of_the_request_changes_the_digest(stored, change):
    assert request_digest(stored()) != request_digest(stored(**change))


def test_a_stored_response_is_found_again_until_its_ttl(redis_client, stored):
    responses = cache(redis_client, cache_ttl_s=120)
    first = stored()

    responses.put(first, "42", "end_turn")

    assert responses.get(stored()) == CachedResponse("42", "end_turn")
    key = Keys().claude_response(request_digest(first))
    assert 0 < redis_client.ttl(key) <= 120


def test_a_miss_and_an_unreadable_entry_read_as_nothing(redis_client, stored):
    responses = cache(redis_client)
    request = stored()
    assert responses.get(request) is None

    redis_client.set(Keys().claude_response(request_digest(request)), "not json")

    assert responses.get(request) is None


@pytest.mark.parametrize(
    ("settings", "temperature", "applies"),
    [
        ({}, 0.0, True),
        ({}, 0.7, False),
        ({"cache_nonzero_temperature": True}, 0.7, True),
        ({"cache_ttl_s": 0}, 0.0, False),
    ],
)
def test_the_cache_applies_by_ttl_and_temperature(
    redis_client, stored, settings, temperature, applies
):
    responses = cache(redis_client, **settings)
    request = stored(temperature=temperature)

    responses.put(request, "a poem", "end_turn")

    assert responses.applies_to(request) is applies
    assert (responses.get(request) is not None) is applies
    assert redis_client.dbsize() == (1 if applies else 0)
