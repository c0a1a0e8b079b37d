"""What the dashboard shows of Claude work that the job pages used to get wrong: the job of
an expired request (gone from Pending, its detail saying why), and the retry of a Message
Batches batch, whose members are Claude requests rather than failed jobs. Real Redis and
SQL; the Message Batches go to the fake Anthropic server through the real SDK."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.claude import submit
from core.claude.batches import retry_id_of, submit_batch
from core.claude.expiry import expire_pending
from core.claude.job import request_job
from core.claude.message_batches import claude_options, poll
from core.claude.records import Status
from core.claude.services import ClaudeServices, default_services
from core.claude.submission import validate
from core.settings import Settings
from tests.claude.batch_worker import work_batches
from tests.claude.conftest import claude_on
from tests.claude.fake_anthropic import FakeAnthropic, bad_request, success
from tests.dashboard.conftest import csrf_of

BATCHES = "/v1/messages/batches"
THREE = [{"prompt": "one"}, {"prompt": "two"}, {"prompt": "three"}]


@pytest.fixture
def settings(settings: Settings, fake_anthropic: FakeAnthropic) -> Settings:
    """Three prompts make a Message Batch; two (a retry's) make one too."""
    return claude_on(settings, fake_anthropic, batch_api_threshold=2)


@pytest.fixture
def services(runtime) -> ClaudeServices:
    return default_services()


def audit_entries(app) -> list[tuple[str, str, dict]]:
    entries, _ = app.state.dashboard.audit.page()
    return [(entry.action, entry.target, entry.detail) for entry in entries]


def pending_job_ids(client) -> set[str]:
    return {row["id"] for row in client.get("/api/jobs/pending").json()["data"]}


def test_an_expired_requests_job_leaves_pending_and_its_page_says_why(
    client, sign_in, runtime, services
):
    request = validate(services.claude, prompt="too old")
    stored = services.requests.create(request, now=datetime.now(UTC) - timedelta(days=2))
    [old_job] = services.dispatcher.dispatch([request_job(stored.id, "normal", services.claude)])
    submit("fresh")
    sign_in(client, "viewer")
    assert old_job in pending_job_ids(client)

    expire_pending(services)

    assert old_job not in pending_job_ids(client) and len(pending_job_ids(client)) == 1
    assert f'href="/job/{old_job}"' not in client.get("/jobs/pending").text
    page = client.get(f"/job/{old_job}")
    assert page.status_code == 200
    assert "ClaudeRequestExpired: taken off the queue without running" in page.text
    assert "Retry" not in page.text, "not in the failed store: there is nothing to retry"
    detail = client.get(f"/api/job/{old_job}").json()
    assert detail["status"] == "failed"
    assert detail["exception"].startswith("ClaudeRequestExpired:")


def ended_with_failures(runtime, services, fake_anthropic) -> tuple[str, dict[str, str]]:
    """A Message Batches batch of THREE that Anthropic ended: one answered, one refused,
    one expired. The batch's id, and the request ids by prompt."""
    batch_id = submit_batch(THREE, owner="team-a", name="nightly")
    assert work_batches(runtime) == 0
    ids = {r.messages[0]["content"]: r.id for r in services.requests.list(batch_id=batch_id)}
    outcomes = {ids["one"]: success("Uno."), ids["two"]: bad_request(), ids["three"]: "expired"}
    fake_anthropic.message_batches.end(outcomes=outcomes)
    assert poll(services) == [batch_id]
    return batch_id, ids


def test_retrying_a_message_batch_sends_its_failed_requests_again_as_a_new_batch(
    app, client, sign_in, runtime, services, fake_anthropic
):
    batch_id, ids = ended_with_failures(runtime, services, fake_anthropic)
    sign_in(client, "operator")
    page = client.get(f"/batches/{batch_id}")
    assert "Retry failed requests" in page.text and "Retry failed jobs" not in page.text
    assert f'href="/ai/requests/{ids["two"]}"' in page.text, "members link to their requests"

    response = client.post(
        f"/batches/{batch_id}/retry", data={"csrf_token": csrf_of(client, "/batches")}
    )

    assert response.status_code == 303
    retry_id = retry_id_of(batch_id)
    again = services.requests.list(batch_id=retry_id)
    assert sorted(r.messages[0]["content"] for r in again) == ["three", "two"]
    assert work_batches(runtime) == 0
    _, sent = fake_anthropic.bodies(BATCHES)
    assert {entry["custom_id"] for entry in sent["requests"]} == {r.id for r in again}
    retry = services.dispatcher.workflows.batches.get(retry_id)
    assert (claude_options(retry)["retry_of"], claude_options(retry)["owner"]) == (
        batch_id,
        "team-a",
    )
    assert services.requests.get(ids["two"]).status is Status.FAILED, "the original stays"
    [(action, target, detail)] = audit_entries(app)
    assert (action, target, detail["retried"], detail["retry_batch"]) == (
        "batch.retry",
        batch_id,
        2,
        retry_id,
    )
    after = client.get(f"/batches/{batch_id}").text
    assert f"Sent 2 failed or expired requests of batch {batch_id} again as batch" in after
    assert "Retry failed requests" not in after, "retried once: the new batch retries its own"
    assert f'href="/batches/{retry_id}"' in after
    assert f'href="/batches/{batch_id}"' in client.get(f"/batches/{retry_id}").text

    twice = client.post(
        f"/batches/{batch_id}/retry", data={"csrf_token": csrf_of(client, "/batches")}
    )
    assert twice.status_code == 303
    assert len(services.requests.list(batch_id=retry_id)) == 2
    assert "was retried already" in client.get(f"/batches/{batch_id}").text
    assert len(fake_anthropic.bodies(BATCHES)) == 2


def test_the_api_retries_a_message_batch_for_an_operator_only(
    app, client, runtime, services, fake_anthropic
):
    batch_id, _ = ended_with_failures(runtime, services, fake_anthropic)
    tokens = app.state.dashboard.tokens
    viewer = {"Authorization": f"Bearer {tokens.create('reader', 'viewer')}"}
    operator = {"Authorization": f"Bearer {tokens.create('ops', 'operator')}"}

    refused = client.post(f"/api/batches/{batch_id}/retry", headers=viewer)
    assert refused.status_code == 403
    assert services.requests.count(batch_id=retry_id_of(batch_id)) == 0

    body = client.post(f"/api/batches/{batch_id}/retry", headers=operator).json()

    assert (len(body["retried"]), body["retry_batch"], body["problems"]) == (
        2,
        retry_id_of(batch_id),
        [],
    )
    assert [(a, t) for a, t, _ in audit_entries(app)] == [("batch.retry", batch_id)]
    assert body["missing"] == body["in_flight"] == []
