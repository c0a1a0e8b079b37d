"""The AI usage page and a Claude request's page: figures that match the requests a test
made (answered by the real job and SDK against the fake Anthropic server), headroom,
paging, owner isolation, cancel, escaping, and the empty state."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from core.claude import submit
from core.claude.limiter import ModelLimits, RateLimiter, Reservation
from core.claude.records import ClaudeRequestRepository, Status
from core.models import ClaudeRequest
from core.settings import Settings
from tests.claude.conftest import claude_on, work
from tests.claude.fake_anthropic import (
    FakeAnthropic,
    bad_request,
    overloaded,
    rate_limited,
    success,
)
from tests.dashboard.conftest import csrf_of

SONNET, HAIKU = "claude-sonnet-4-6", "claude-haiku-4-5"
SCRIPT = "<script>alert(1)</script>"
HOSTILE = SCRIPT + '"><img src=x onerror=alert(1)>'
REQUESTS_PER_MINUTE = 50


@pytest.fixture
def settings(settings: Settings, fake_anthropic: FakeAnthropic) -> Settings:
    """Claude on the fake server, with a request limit on Haiku for the headroom (the
    workload asks Sonnet, so the limiter keeps out of its way)."""
    models = dict(settings.claude.models)
    models[HAIKU] = models[HAIKU].model_copy(update={"requests_per_minute": REQUESTS_PER_MINUTE})
    return claude_on(settings, fake_anthropic, models=models)


@pytest.fixture
def store(engine) -> ClaudeRequestRepository:
    return ClaudeRequestRepository(engine)


@pytest.fixture
def viewer(client, sign_in):
    sign_in(client, "viewer")
    return client


@pytest.fixture
def workload(runtime, fake_anthropic) -> dict[str, str]:
    """Three answered requests (one through a 429 and a 529, one from the cache), one
    rejected by the API, one still pending."""
    fake_anthropic.script(
        success("first", input_tokens=100_000, output_tokens=20_000),
        rate_limited(0),
        overloaded(0),
        success("second", input_tokens=100_000, output_tokens=20_000),
        bad_request("prompt is too long"),
    )
    ids = {}
    for name, prompt, owner in (
        ("first", "The same question", "team-a"),
        ("throttled", "Another", "team-a"),
        ("rejected", "Too long", "team-b"),
        ("cached", "The same question", "team-a"),
    ):
        ids[name] = submit(prompt, temperature=0, owner=owner)
        work(runtime)  # one at a time: each takes the fake's next scripted answers
    ids["pending"] = submit("Later", owner="team-b")
    return ids


def chart_values(page: str, unit: str) -> list[float]:
    """The exact value of each point of the charts in ``unit`` (``...: 5 requests/min``)."""
    pattern = rf'class="chart-mark"[^>]*><title>[^<]*: ([\d.,]+) {unit}<'
    return [float(n.replace(",", "")) for n in re.findall(pattern, page)]


def test_without_requests_the_page_says_how_to_turn_the_workload_on(viewer):
    page = viewer.get("/ai")

    assert page.status_code == 200
    assert page.context["usage"] is None
    assert "No Claude requests yet" in page.text
    assert "ANTHROPIC_API_KEY" in page.text and "[claude]" in page.text
    assert "core.claude.submit(" in page.text and "POST /api/claude/requests" in page.text


def test_the_figures_match_the_requests_made(viewer, workload, store):
    page = viewer.get("/ai")

    assert page.status_code == 200
    totals = page.context["usage"].totals
    assert totals.requests == 5
    assert [totals.statuses[s] for s in (Status.COMPLETED, Status.FAILED, Status.PENDING)] == [
        3,
        1,
        1,
    ]
    assert (totals.cached, totals.times_rate_limited, totals.times_overloaded) == (1, 1, 1)
    assert totals.cost_usd == pytest.approx(1.2)  # 2 x (100k x $3 + 20k x $15) per million
    assert ">$1.20<" in page.text
    assert ">33%<" in page.text  # one of three answers came from the cache
    assert sum(chart_values(page.text, "requests/min")) == 5
    assert sum(chart_values(page.text, "tokens/min")) == 240_000
    [(model, use)] = page.context["usage"].models
    assert (model, use.requests, use.input_tokens, use.output_tokens) == (
        SONNET,
        3,
        200_000,
        40_000,
    )
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    assert page.context["usage"].cost_days[0] == (today, pytest.approx(1.2))
    assert len(page.context["usage"].cost_days) == 14


def test_a_request_answered_after_a_429_and_a_529_counts_both(workload, store):
    throttled = store.get(workload["throttled"])

    assert (throttled.status, throttled.attempts) == (Status.COMPLETED, 3)
    assert (throttled.times_rate_limited, throttled.times_overloaded) == (1, 1)


def test_the_slowest_requests_link_to_their_pages(viewer, workload):
    page = viewer.get("/ai")

    slowest = [slow.request.id for slow in page.context["usage"].slowest]
    assert sorted(slowest) == sorted([workload["first"], workload["throttled"], workload["cached"]])
    for request_id in slowest:
        assert f'href="/ai/requests/{request_id}"' in page.text


def test_headroom_is_the_limiters_window_against_the_configured_limit(
    app, viewer, redis_client, runtime
):
    submit("hi")
    limiter = RateLimiter(redis_client, runtime.dispatcher.keys)
    limits = ModelLimits(requests_per_minute=REQUESTS_PER_MINUTE)
    for _ in range(3):
        assert limiter.acquire(HAIKU, limits, Reservation(10, 10)) == 0

    page = viewer.get("/ai")

    by_model = {h.model: h for h in page.context["usage"].headroom}
    requests = by_model[HAIKU].budgets[0]
    assert (requests.used, requests.limit, requests.left) == (3, REQUESTS_PER_MINUTE, 47)
    assert by_model[SONNET].budgets[0].left is None
    assert ">47</span> left" in page.text and "unlimited" in page.text


def test_the_recent_requests_are_paged_and_filtered(viewer, workload):
    first = viewer.get("/ai", params={"per_page": 2})
    second = viewer.get("/ai", params={"per_page": 2, "page": 2})
    failed = viewer.get("/ai", params={"status": "failed"})

    recent = first.context["recent"]
    assert (recent.page.total, recent.page.pages) == (5, 3)
    assert [r.id for r in recent.records] == [workload["pending"], workload["cached"]]
    assert 'href="/ai?per_page=2&amp;page=2"' in first.text
    assert second.context["recent"].records[0].id == workload["rejected"]
    assert [r.id for r in failed.context["recent"].records] == [workload["rejected"]]
    assert viewer.get("/ai", params={"status": "done"}).status_code == 400


def test_a_token_sees_only_its_own_requests_on_the_pages(app, client, workload):
    token = app.state.dashboard.tokens.create("team-b", "viewer")
    headers = {"Authorization": f"Bearer {token}"}

    page = client.get("/ai", headers=headers)

    assert {r.owner for r in page.context["recent"].records} == {"team-b"}
    assert page.context["usage"].totals.requests == 2
    assert client.get(f"/ai/requests/{workload['first']}", headers=headers).status_code == 404
    assert client.get(f"/ai/requests/{workload['pending']}", headers=headers).status_code == 200


def test_the_request_page_shows_prompt_response_usage_and_timings(viewer, workload, store):
    record = store.get(workload["throttled"])

    page = viewer.get(f"/ai/requests/{record.id}")

    assert page.status_code == 200
    assert page.context["record"] == record
    durations = page.context["durations"]
    assert durations.running_ms is not None
    assert durations.total_ms == pytest.approx(durations.queued_ms + durations.running_ms)
    for shown in ("Another", "second", record.id, "team-a", "429 answers", "529 answers"):
        assert shown in page.text
    assert ">100k<" in page.text and ">$0.60<" in page.text


def test_the_request_page_of_a_cached_or_failed_request_says_so(viewer, workload):
    cached = viewer.get(f"/ai/requests/{workload['cached']}")
    rejected = viewer.get(f"/ai/requests/{workload['rejected']}")

    assert "Answered from the response cache" in cached.text
    assert "400 invalid_request_error: prompt is too long" in rejected.text
    assert "No answer: the request failed." in rejected.text


def test_an_unknown_request_is_a_404(viewer):
    page = viewer.get("/ai/requests/no-such-id")

    assert page.status_code == 404
    assert "There is no Claude request" in page.text


def test_a_batch_links_to_its_requests(viewer, runtime):
    in_batch = submit("one of many", batch_id="batch-7")
    submit("on its own")

    page = viewer.get(f"/ai/requests/{in_batch}")
    listed = viewer.get("/ai", params={"batch": "batch-7"})

    assert 'href="/ai?batch=batch-7"' in page.text
    assert [r.id for r in listed.context["recent"].records] == [in_batch]


def test_an_operator_cancels_a_pending_request_from_its_page(app, client, sign_in, store):
    request_id = submit("never mind")
    sign_in(client, "operator")
    path = f"/ai/requests/{request_id}"

    response = client.post(f"{path}/cancel", data={"csrf_token": csrf_of(client, path)})

    assert response.status_code == 303
    assert response.headers["location"] == path
    assert store.get(request_id).status is Status.CANCELLED
    entries, _ = app.state.dashboard.audit.page()
    assert [(e.action, e.target) for e in entries] == [("claude.cancel", request_id)]
    assert f"Cancelled request {request_id}." in client.get(path).text


def test_a_viewer_sees_no_cancel_button_and_may_not_cancel(client, sign_in, store):
    request_id = submit("stay")
    sign_in(client, "viewer")
    path = f"/ai/requests/{request_id}"

    assert f"{path}/cancel" not in client.get(path).text
    response = client.post(f"{path}/cancel", data={"csrf_token": csrf_of(client, path)})

    assert response.status_code == 403
    assert store.get(request_id).status is Status.PENDING


def test_markup_in_prompt_system_and_response_renders_inert(viewer, runtime, fake_anthropic):
    fake_anthropic.script(success(HOSTILE))
    request_id = submit(HOSTILE, system=HOSTILE, owner=HOSTILE)
    work(runtime)

    detail = viewer.get(f"/ai/requests/{request_id}")
    listing = viewer.get("/ai")

    for page in (detail.text, listing.text):
        assert SCRIPT not in page and "<img" not in page
    assert detail.text.count("&lt;script&gt;alert(1)") >= 4  # prompt, system, response, owner
    assert "&lt;script&gt;alert(1)" in listing.text  # the owner column


def test_a_malformed_stored_request_does_not_break_its_page(viewer, engine, store):
    request_id = submit("hi")
    with engine.begin() as connection:
        connection.execute(
            update(ClaudeRequest).where(ClaudeRequest.id == request_id).values(messages="{oops")
        )

    page = viewer.get(f"/ai/requests/{request_id}")

    assert page.status_code == 200
    assert "The stored messages cannot be read." in page.text
