"""Claude requests over HTTP (/api/claude): validation, per-owner isolation, paging, cancel
and roles, on real Redis and SQL, with requests answered by the real job and SDK against
the fake Anthropic server."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from core.claude import submit
from core.claude.records import ClaudeRequestRepository, NewRequest, Status
from core.settings import Settings
from tests.claude.conftest import claude_on, work
from tests.claude.fake_anthropic import FakeAnthropic, bad_request, success
from tests.dashboard.conftest import csrf_of

REQUESTS = "/api/claude/requests"
Headers = dict[str, str]


@pytest.fixture
def settings(settings: Settings, fake_anthropic: FakeAnthropic) -> Settings:
    return claude_on(settings, fake_anthropic)


@pytest.fixture
def store(engine) -> ClaudeRequestRepository:
    return ClaudeRequestRepository(engine)


@pytest.fixture
def token(app) -> Callable[..., Headers]:
    """The Authorization header of a new API token named ``name``, with ``role``."""

    def token(name: str, role: str = "operator") -> Headers:
        return {"Authorization": f"Bearer {app.state.dashboard.tokens.create(name, role)}"}

    return token


def audit_entries(app) -> list[tuple[str, str, str]]:
    entries, _ = app.state.dashboard.audit.page()
    return [(entry.actor, entry.action, entry.target) for entry in entries]


def create(client, headers: Headers, **body) -> str:
    response = client.post(REQUESTS, json={"prompt": "hi", **body}, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def test_a_request_is_accepted_with_its_id_and_location_and_queued(
    app, client, token, store, runtime
):
    response = client.post(
        REQUESTS,
        json={"prompt": "Summarise", "system": "Be brief.", "max_tokens": 64, "priority": "high"},
        headers=token("team-a"),
    )

    assert response.status_code == 202
    request_id = response.json()["id"]
    assert response.json() == {"id": request_id, "status": "pending"}
    assert response.headers["location"] == f"{REQUESTS}/{request_id}"
    stored = store.get(request_id)
    assert (stored.owner, stored.status, stored.priority, stored.max_tokens) == (
        "team-a",
        Status.PENDING,
        "high",
        64,
    )
    assert stored.messages == [{"role": "user", "content": "Summarise"}]
    assert runtime.queue().size("claude-high") == 1
    assert audit_entries(app) == [("team-a (token)", "claude.submit", request_id)]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"max_tokens": 10}, {"prompt"}),
        ({"prompt": "x" * 50_001}, {"prompt"}),
        ({"prompt": "   "}, {"prompt"}),
        ({"prompt": "hi", "max_tokens": 0}, {"max_tokens"}),
        ({"prompt": "hi", "max_tokens": 200_001}, {"max_tokens"}),
        ({"prompt": "hi", "max_tokens": 12.5}, {"max_tokens"}),
        ({"prompt": "hi", "temperature": 1.01}, {"temperature"}),
        ({"prompt": "hi", "temperature": -0.1}, {"temperature"}),
        ({"prompt": "hi", "model": "gpt-4"}, {"model"}),
        ({"prompt": "hi", "owner": "someone-else"}, {"owner"}),
        (
            {"prompt": "x" * 50_001, "max_tokens": 0, "temperature": 2, "model": "nope"},
            {"prompt", "max_tokens", "temperature", "model"},
        ),
    ],
)
def test_an_invalid_request_is_a_422_naming_each_bad_field(
    client, token, store, runtime, body, fields
):
    response = client.post(REQUESTS, json=body, headers=token("team-a"))

    assert response.status_code == 422
    answer = response.json()
    assert set(answer["fields"]) == fields
    assert all(isinstance(message, str) and message for message in answer["fields"].values())
    assert answer["error"]
    assert store.count() == 0
    assert runtime.queue().size("claude-normal") == 0


def test_the_limits_are_inclusive(client, token, store):
    headers = token("team-a")
    create(client, headers, prompt="x" * 50_000, max_tokens=200_000, temperature=1)
    create(client, headers, max_tokens=1, temperature=0, model="claude-haiku-4-5")

    assert store.count() == 2


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'"hi"'])
def test_a_body_that_is_no_json_object_is_a_400(client, token, body):
    response = client.post(REQUESTS, content=body, headers=token("team-a"))

    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


def test_a_completed_request_shows_its_response_usage_cost_and_durations(
    client, token, runtime, fake_anthropic
):
    headers = token("team-a")
    fake_anthropic.script(success("Paris.", input_tokens=1000, output_tokens=200))
    request_id = create(client, headers, prompt="Capital of France?", max_tokens=50)
    assert work(runtime) == 0

    response = client.get(f"{REQUESTS}/{request_id}", headers=headers)

    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["owner"], body["status"]) == (request_id, "team-a", "completed")
    assert body["response"] == {"text": "Paris.", "stop_reason": "end_turn"}
    assert body["messages"] == [{"role": "user", "content": "Capital of France?"}]
    assert (body["usage"]["input_tokens"], body["usage"]["output_tokens"]) == (1000, 200)
    assert body["cost_usd"] == pytest.approx((1000 * 3 + 200 * 15) / 1e6)
    assert (body["cached"], body["attempts"], body["error"]) == (False, 1, None)
    durations = body["durations"]
    assert min(durations.values()) >= 0
    assert durations["total_ms"] == pytest.approx(
        durations["queued_ms"] + durations["running_ms"], abs=0.01
    )
    assert body["finished_at"] >= body["started_at"] >= body["created_at"]


def test_a_pending_request_has_no_response_and_no_running_time(client, token):
    headers = token("team-a")
    request_id = create(client, headers)

    body = client.get(f"{REQUESTS}/{request_id}", headers=headers).json()

    assert (body["status"], body["response"], body["started_at"]) == ("pending", None, None)
    assert body["durations"]["running_ms"] is None
    assert body["durations"]["queued_ms"] == body["durations"]["total_ms"] >= 0


def test_a_token_sees_only_its_own_requests_and_others_are_404(client, token, sign_in):
    team_a, team_b = token("team-a"), token("team-b")
    mine = create(client, team_a)

    theirs = client.get(f"{REQUESTS}/{mine}", headers=team_b)
    unknown = client.get(f"{REQUESTS}/no-such-id", headers=team_b)

    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["error"] == f"There is no Claude request {mine!r}."
    assert client.delete(f"{REQUESTS}/{mine}", headers=team_b).status_code == 404
    assert client.get(REQUESTS, headers=team_b).json()["data"] == []
    assert [r["id"] for r in client.get(REQUESTS, headers=team_a).json()["data"]] == [mine]
    assert client.get(f"{REQUESTS}/{mine}", headers=team_a).status_code == 200
    assert client.get(f"{REQUESTS}/{mine}", headers=team_a).json()["status"] == "pending"
    sign_in(client, "viewer")
    assert client.get(f"{REQUESTS}/{mine}").json()["owner"] == "team-a"


def test_the_list_is_paginated_newest_first_and_filtered_by_status(client, token, runtime):
    headers = token("team-a")
    ids = [submit(f"question {n}", owner="team-a") for n in range(5)]
    submit("not theirs", owner="team-b")
    client.delete(f"{REQUESTS}/{ids[1]}", headers=headers)

    first = client.get(REQUESTS, params={"per_page": 2}, headers=headers).json()
    last = client.get(REQUESTS, params={"per_page": 2, "page": 3}, headers=headers).json()
    cancelled = client.get(REQUESTS, params={"status": "cancelled"}, headers=headers).json()

    assert first["page"] == {"number": 1, "per_page": 2, "total": 5, "pages": 3}
    assert [r["id"] for r in first["data"]] == [ids[4], ids[3]]
    assert [r["id"] for r in last["data"]] == [ids[0]]
    assert [(r["id"], r["status"]) for r in cancelled["data"]] == [(ids[1], "cancelled")]
    assert "messages" not in first["data"][0] and "response" not in first["data"][0]


@pytest.mark.parametrize("query", ["status=done", "page=0", "per_page=x"])
def test_a_bad_list_parameter_is_a_400(client, token, query):
    response = client.get(f"{REQUESTS}?{query}", headers=token("team-a"))

    assert response.status_code == 400
    assert response.json()["error"]


def test_delete_cancels_a_pending_request_which_is_then_never_sent(
    app, client, token, store, runtime, fake_anthropic
):
    headers = token("team-a")
    request_id = create(client, headers)

    response = client.delete(f"{REQUESTS}/{request_id}", headers=headers)

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert store.get(request_id).status is Status.CANCELLED
    assert ("team-a (token)", "claude.cancel", request_id) in audit_entries(app)
    assert work(runtime) == 0
    assert fake_anthropic.received == []


def test_delete_of_a_finished_request_is_a_409(client, token, runtime):
    headers = token("team-a")
    request_id = create(client, headers)
    assert work(runtime) == 0

    response = client.delete(f"{REQUESTS}/{request_id}", headers=headers)

    assert response.status_code == 409
    assert "completed" in response.json()["error"]
    assert client.delete(f"{REQUESTS}/{request_id}", headers=headers).status_code == 409


def test_a_viewer_token_reads_but_may_not_create_or_cancel(client, token, store):
    viewer = token("reader", "viewer")
    request_id = submit("hi", owner="reader")

    assert client.post(REQUESTS, json={"prompt": "hi"}, headers=viewer).status_code == 403
    assert client.delete(f"{REQUESTS}/{request_id}", headers=viewer).status_code == 403
    assert client.get(f"{REQUESTS}/{request_id}", headers=viewer).status_code == 200
    assert client.get(REQUESTS, headers=viewer).json()["page"]["total"] == 1
    assert store.get(request_id).status is Status.PENDING
    assert store.count() == 1


def test_a_session_submits_with_the_csrf_header_and_owns_the_request(client, sign_in, store):
    email = sign_in(client, "operator")

    refused = client.post(REQUESTS, json={"prompt": "hi"})
    accepted = client.post(
        REQUESTS, json={"prompt": "hi"}, headers={"X-CSRF-Token": csrf_of(client, "/")}
    )

    assert refused.status_code == 403
    assert accepted.status_code == 202
    assert store.get(accepted.json()["id"]).owner == email
    assert store.count() == 1


def test_messages_are_accepted_instead_of_a_prompt(client, token, store):
    messages = [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": [{"type": "text", "text": "Again?"}]},
    ]

    request_id = create(client, token("team-a"), prompt=None, messages=messages)

    assert store.get(request_id).messages == messages


def test_the_openapi_document_describes_the_claude_endpoints(client, token):
    paths = client.get("/api/openapi.json", headers=token("reader", "viewer")).json()["paths"]

    assert set(paths[REQUESTS]) == {"get", "post"}
    assert set(paths[f"{REQUESTS}/{{id}}"]) == {"get", "delete"}
    assert "422" in paths[REQUESTS]["post"]["responses"]
    assert "409" in paths[f"{REQUESTS}/{{id}}"]["delete"]["responses"]


# -- batches ------------------------------------------------------------------------------------

BATCHES = "/api/claude/batches"


def create_batch(client, headers: Headers, prompts: list[str], **body) -> str:
    requests = [{"prompt": prompt} for prompt in prompts]
    response = client.post(BATCHES, json={"requests": requests, **body}, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()["id"]


def claude_batch(runtime, batch_id: str, owner: str, **claude) -> None:
    """A Claude batch's Skyline record with no requests (yet, or any more)."""
    options = {"claude": {"mode": "jobs", "owner": owner, **claude}}
    runtime.dispatcher.workflows.batches.create(
        id=batch_id, name="by hand", total_jobs=0, options=options
    )


def test_a_batch_is_accepted_and_its_progress_follows_its_requests(
    app, client, token, runtime, store, fake_anthropic
):
    headers = token("team-a")
    fake_anthropic.script(success("one"), bad_request("prompt is too long"), success("three"))

    response = client.post(
        BATCHES,
        json={"requests": [{"prompt": "a"}, {"prompt": "b"}, {"prompt": "c"}], "name": "nightly"},
        headers=headers,
    )

    assert response.status_code == 202
    batch_id = response.json()["id"]
    assert response.headers["location"] == f"{BATCHES}/{batch_id}"
    assert ("team-a (token)", "claude.batch.submit", batch_id) in audit_entries(app)
    queued = client.get(f"{BATCHES}/{batch_id}", headers=headers).json()
    assert (queued["pending"], queued["total"], queued["percentage"]) == (3, 3, 0.0)
    assert (queued["mode"], queued["finished"]) == ("jobs", False)
    listed = client.get(REQUESTS, params={"batch_id": batch_id}, headers=headers).json()
    assert [r["batch_id"] for r in listed["data"]] == [batch_id] * 3
    assert {store.get(r["id"]).owner for r in listed["data"]} == {"team-a"}

    assert work(runtime) == 0

    done = client.get(f"{BATCHES}/{batch_id}", headers=headers).json()
    assert (done["completed"], done["failed"], done["pending"], done["processing"]) == (2, 1, 0, 0)
    assert (done["percentage"], done["finished"]) == (100.0, True)


def test_a_partly_finished_batch_reports_its_percentage(client, token):
    headers = token("team-a")
    batch_id = create_batch(client, headers, ["a", "b", "c"])
    [first, *_] = client.get(REQUESTS, params={"batch_id": batch_id}, headers=headers).json()[
        "data"
    ]
    client.delete(f"{REQUESTS}/{first['id']}", headers=headers)

    progress = client.get(f"{BATCHES}/{batch_id}", headers=headers).json()

    assert (progress["cancelled"], progress["pending"], progress["percentage"]) == (1, 2, 33.3)


def test_an_empty_batch_has_progress_without_dividing_by_zero(client, token, runtime):
    claude_batch(runtime, "empty-batch", "team-a")

    response = client.get(f"{BATCHES}/empty-batch", headers=token("team-a"))

    assert response.status_code == 200
    progress = response.json()
    assert (progress["total"], progress["completed"], progress["pending"]) == (0, 0, 0)
    assert (progress["percentage"], progress["finished"]) == (100.0, True)
    assert (
        client.delete(f"{BATCHES}/empty-batch", headers=token("team-b", "admin")).status_code == 404
    )


def test_an_invalid_batch_is_a_422_naming_each_bad_prompt(client, token, store, runtime):
    body = {
        "requests": [{"prompt": "fine"}, {"prompt": ""}, {"prompt": "x", "max_tokens": 0}, "no"],
        "webhook_url": "ftp://example.com/hook",
    }

    response = client.post(BATCHES, json=body, headers=token("team-a"))

    assert response.status_code == 422
    assert set(response.json()["fields"]) == {
        "requests[1].prompt",
        "requests[2].max_tokens",
        "requests[3]",
        "webhook_url",
    }
    assert store.count() == 0
    assert runtime.queue().size("claude-normal") == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"requests": []}, "requests"),
        ({"name": "no prompts"}, "requests"),
        ({"requests": [{"prompt": "hi"}], "owner": "someone-else"}, "owner"),
        ({"requests": [{"prompt": "hi", "owner": "someone-else"}]}, "requests[0]"),
        ({"requests": [{"prompt": "hi"}], "priority": "urgent"}, "priority"),
    ],
)
def test_a_batch_without_prompts_or_with_an_unknown_field_is_a_422(
    client, token, store, body, field
):
    response = client.post(BATCHES, json=body, headers=token("team-a"))

    assert response.status_code == 422
    assert field in response.json()["fields"]
    assert store.count() == 0


def test_a_token_sees_only_its_own_batches(client, token):
    batch_id = create_batch(client, token("team-a"), ["a"])
    team_b = token("team-b")

    theirs = client.get(f"{BATCHES}/{batch_id}", headers=team_b)

    assert theirs.status_code == client.get(f"{BATCHES}/nope", headers=team_b).status_code == 404
    assert theirs.json()["error"] == f"There is no Claude batch {batch_id!r}."
    assert client.delete(f"{BATCHES}/{batch_id}", headers=team_b).status_code == 404
    reader = token("reader", "viewer")
    assert client.get(f"{BATCHES}/{batch_id}", headers=reader).status_code == 404


def test_delete_cancels_what_is_left_of_a_batch(app, client, token, runtime, fake_anthropic):
    headers = token("team-a")
    batch_id = create_batch(client, headers, ["a", "b"])

    response = client.delete(f"{BATCHES}/{batch_id}", headers=headers)

    assert response.status_code == 200
    body = response.json()
    assert body["cancelled"] == 2
    assert (body["progress"]["cancelled"], body["progress"]["percentage"]) == (2, 100.0)
    assert ("team-a (token)", "claude.batch.cancel", batch_id) in audit_entries(app)
    assert client.delete(f"{BATCHES}/{batch_id}", headers=headers).status_code == 409
    assert work(runtime) == 0
    assert fake_anthropic.received == []


def test_a_viewer_token_follows_a_batch_but_may_not_submit_or_cancel(client, token, runtime):
    viewer = token("reader", "viewer")
    claude_batch(runtime, "readers-batch", "reader")

    assert (
        client.post(BATCHES, json={"requests": [{"prompt": "a"}]}, headers=viewer).status_code
        == 403
    )
    assert client.delete(f"{BATCHES}/readers-batch", headers=viewer).status_code == 403
    assert client.get(f"{BATCHES}/readers-batch", headers=viewer).status_code == 200


def test_a_message_batch_anthropic_cannot_cancel_is_a_502(client, token, runtime, store):
    claude_batch(
        runtime, "sent-batch", "team-a", mode="message_batches", message_batch_id="msgbatch_gone"
    )
    [waiting] = store.create_many(
        [
            NewRequest(
                model="claude-sonnet-4-6",
                messages=[{"role": "user", "content": "hi"}],
                max_tokens=10,
                temperature=1.0,
                owner="team-a",
                batch_id="sent-batch",
            )
        ]
    )
    store.processing(waiting.id)

    response = client.delete(f"{BATCHES}/sent-batch", headers=token("team-a"))

    assert response.status_code == 502
    assert "message batch not found" in response.json()["error"]
    assert store.get(waiting.id).status is Status.PROCESSING
