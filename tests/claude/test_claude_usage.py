"""What the AI usage page reads: the SQL aggregates over real SQL (SQLite or PostgreSQL),
the 429 / 529 counters a request keeps, and the limiter's read-only view of a window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.claude.cost import Usage
from core.claude.limiter import ModelLimits, RateLimiter, Reservation, WindowUse
from core.claude.records import ClaudeRequestRepository, NewRequest, Response, Status
from core.claude.usage import ClaudeUsageRepository
from core.keys import Keys
from core.limits import START_MARGIN_MS

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
DAY = timedelta(days=1)
SOME_USAGE = Usage(100, 20, 10, 5)
SONNET, HAIKU = "claude-sonnet-4-6", "claude-haiku-4-5"


@pytest.fixture
def requests(engine) -> ClaudeRequestRepository:
    return ClaudeRequestRepository(engine)


@pytest.fixture
def usage(engine) -> ClaudeUsageRepository:
    return ClaudeUsageRepository(engine)


def new(requests, at: datetime, model: str = SONNET, owner: str = "ann") -> str:
    request = NewRequest(
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=100,
        temperature=0.0,
        owner=owner,
    )
    return requests.create(request, now=at).id


def answered(
    requests,
    at: datetime,
    ran: timedelta = timedelta(seconds=2),
    usage: Usage = SOME_USAGE,
    cost: float = 0.5,
    cached: bool = False,
    **request,
) -> str:
    """A request created at ``at``, started then, and answered ``ran`` later."""
    request_id = new(requests, at, **request)
    requests.processing(request_id, now=at)
    requests.completed(request_id, Response("ok", "end_turn", usage, cost, cached), now=at + ran)
    return request_id


def test_totals_count_the_window_by_status_with_cost_cache_and_throttling(requests, usage):
    answered(requests, T0, cost=0.25)
    answered(requests, T0 + MINUTE, cost=0.0, cached=True)
    failing = new(requests, T0 + MINUTE)
    requests.processing(failing)
    requests.retrying(failing, "429 rate_limit_error", rate_limited=True)
    requests.retrying(failing, "529 overloaded_error", overloaded=True)
    requests.retrying(failing, "529 overloaded_error", overloaded=True)
    requests.failed(failing)
    new(requests, T0 + 2 * MINUTE)
    answered(requests, T0 - MINUTE, cost=9.0)  # before the window
    answered(requests, T0, cost=7.0, owner="bob")

    totals = usage.totals(T0, owner="ann")

    assert totals.requests == 4
    assert totals.statuses[Status.COMPLETED] == 2
    assert (totals.statuses[Status.FAILED], totals.statuses[Status.PENDING]) == (1, 1)
    assert (totals.cached, totals.cache_hit_rate) == (1, 0.5)
    assert totals.cost_usd == pytest.approx(0.25)
    assert (totals.times_rate_limited, totals.times_overloaded) == (1, 2)
    assert usage.totals(T0).requests == 5


def test_totals_of_an_empty_window_have_no_cache_hit_rate(usage):
    totals = usage.totals(T0)

    assert (totals.requests, totals.cost_usd, totals.cache_hit_rate) == (0, 0.0, None)


def test_requests_are_bucketed_by_whole_minutes_of_their_creation(requests, usage):
    new(requests, T0)
    new(requests, T0 + timedelta(seconds=59, microseconds=999_000))
    new(requests, T0 + MINUTE)
    new(requests, T0 + 3 * MINUTE)  # at ``until``: not in the range

    per_minute = usage.requests_per_bucket(T0, T0 + 3 * MINUTE, 60)

    assert per_minute == {T0: 2, T0 + MINUTE: 1}


def test_tokens_are_summed_by_model_and_minute_of_the_answer(requests, usage):
    answered(requests, T0, ran=timedelta(seconds=30), usage=Usage(100, 20, 10, 5), cost=0.1)
    answered(requests, T0 + timedelta(seconds=10), usage=Usage(1, 2, 3, 4), cost=0.2)
    answered(requests, T0, ran=timedelta(seconds=70), model=HAIKU, usage=Usage(7, 0, 0, 0))
    pending = new(requests, T0)
    requests.processing(pending, now=T0)

    found = usage.tokens_per_bucket(T0, T0 + 5 * MINUTE, 60)

    [sonnet] = found[SONNET].values()
    assert list(found[SONNET]) == [T0]
    assert (sonnet.requests, sonnet.input_tokens, sonnet.output_tokens) == (2, 101, 22)
    assert (sonnet.cache_creation_input_tokens, sonnet.cache_read_input_tokens) == (13, 9)
    assert (sonnet.tokens, sonnet.cost_usd) == (145, pytest.approx(0.3))
    assert {at: use.tokens for at, use in found[HAIKU].items()} == {T0 + MINUTE: 7}


def test_cost_is_summed_by_utc_day_of_the_answer(requests, usage):
    midnight = datetime(2026, 3, 2, tzinfo=UTC)
    answered(requests, midnight - timedelta(seconds=5), ran=timedelta(seconds=1), cost=1.0)
    answered(requests, midnight - timedelta(seconds=5), ran=timedelta(seconds=5), cost=2.0)
    answered(requests, midnight + timedelta(hours=23), cost=4.0)
    failed = new(requests, midnight)
    requests.failed(failed)

    per_day = usage.cost_per_bucket(midnight - DAY, midnight + 2 * DAY, 86_400)

    assert per_day == {midnight - DAY: 1.0, midnight: 6.0}


def test_the_slowest_are_the_longest_running_answers_of_the_window(requests, usage):
    quick = answered(requests, T0, ran=timedelta(seconds=1))
    slow = answered(requests, T0, ran=timedelta(seconds=90))
    slower = answered(requests, T0, ran=timedelta(minutes=5))
    answered(requests, T0 - timedelta(hours=1), ran=timedelta(minutes=40))  # answered before
    running = new(requests, T0)
    requests.processing(running, now=T0 - timedelta(hours=1))

    slowest = usage.slowest(T0, limit=2)

    assert [r.id for r in slowest] == [slower, slow]
    assert quick in [r.id for r in usage.slowest(T0)]


def test_retrying_counts_429_and_529_answers(requests):
    request_id = new(requests, T0)
    requests.processing(request_id)

    requests.retrying(request_id, "429 rate_limit_error", rate_limited=True)
    requests.retrying(request_id, "429 rate_limit_error", rate_limited=True)
    requests.retrying(request_id, "529 overloaded_error", overloaded=True)
    requests.retrying(request_id, "500 api_error")

    found = requests.get(request_id)
    assert (found.times_rate_limited, found.times_overloaded) == (2, 1)
    assert found.error == "500 api_error"


# -- the limiter's read-only view ---------------------------------------------------------------

W_MS = 60_000
AT_MS = 1_735_689_600_000


def test_used_adds_up_the_reservations_in_the_window_without_changing_them(redis_client):
    limiter = RateLimiter(redis_client, Keys())
    limits = ModelLimits(requests_per_minute=10)
    assert limiter.acquire(SONNET, limits, Reservation(100, 50), AT_MS) == 0
    assert limiter.acquire(SONNET, limits, Reservation(30, 20), AT_MS + 1000) == 0
    before = {key: redis_client.dump(key) for key in redis_client.scan_iter("*")}

    assert limiter.used(SONNET, AT_MS + 2000) == WindowUse(2, 130, 70)
    assert limiter.used(SONNET, AT_MS + START_MARGIN_MS + W_MS) == WindowUse(1, 30, 20)
    assert limiter.used(SONNET, AT_MS + START_MARGIN_MS + W_MS + 1000) == WindowUse()
    assert limiter.used(HAIKU, AT_MS) == WindowUse()
    assert {key: redis_client.dump(key) for key in redis_client.scan_iter("*")} == before


def test_used_reports_what_the_api_said_remains_until_its_reset(redis_client):
    limiter = RateLimiter(redis_client, Keys())
    reset = datetime.fromtimestamp((AT_MS + 5000) / 1000, UTC).isoformat()
    headers = {
        "anthropic-ratelimit-input-tokens-remaining": "400",
        "anthropic-ratelimit-input-tokens-reset": reset,
    }
    assert limiter.observe(SONNET, ModelLimits(input_tokens_per_minute=1000), headers, AT_MS) == 1

    assert limiter.used(SONNET, AT_MS + 10).api_remaining == {"input_tokens": 400}
    assert limiter.used(SONNET, AT_MS + 5000).api_remaining == {}


def test_used_reads_the_redis_servers_clock_by_default(redis_client):
    limiter = RateLimiter(redis_client, Keys())
    assert limiter.acquire(SONNET, ModelLimits(), Reservation(5, 6)) == 0

    assert limiter.used(SONNET) == WindowUse(1, 5, 6)
