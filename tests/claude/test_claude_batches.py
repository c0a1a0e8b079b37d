"""Claude batches as Skyline batches: submit, progress, cancel and the batch webhook, end to
end with the real SDK against the fake API, real Redis and SQL, and a real worker."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from core.alert_channels import signature
from core.claude.batches import batch_progress, cancel_batch, submit_batch
from core.claude.cost import Usage
from core.claude.records import Response
from core.claude.submission import RequestValidationError
from tests.claude.batch_worker import work_batches
from tests.claude.fake_anthropic import bad_request, success
from tests.receivers import HttpReceiver

SECRET = "whsec-for-tests"
THREE = [{"prompt": "one"}, {"prompt": "two"}, {"prompt": "three"}]


def skyline_batch(services, batch_id: str):
    found = services.dispatcher.workflows.batches.get(batch_id)
    assert found is not None, f"no Skyline batch {batch_id}"
    return found


def test_a_batch_stores_a_request_per_prompt_under_one_id_and_one_skyline_batch(runtime, services):
    batch_id = submit_batch(
        [
            {"prompt": "one"},
            {"messages": [{"role": "user", "content": "two"}], "system": "Be brief."},
            {"prompt": "three", "model": "claude-haiku-4-5", "max_tokens": 10, "temperature": 0},
        ],
        owner="team-a",
        priority="high",
        max_tokens=100,
        name="nightly",
    )

    stored = sorted(
        services.requests.list(batch_id=batch_id), key=lambda r: r.messages[0]["content"]
    )
    assert [(r.owner, r.priority, r.status) for r in stored] == [("team-a", "high", "pending")] * 3
    assert [(r.model, r.max_tokens, r.temperature) for r in stored] == [
        ("claude-sonnet-4-6", 100, 1.0),
        ("claude-haiku-4-5", 10, 0.0),
        ("claude-sonnet-4-6", 100, 1.0),
    ]
    assert stored[2].system == "Be brief."
    record = skyline_batch(services, batch_id)
    assert (record.name, record.total_jobs, record.pending_jobs) == ("nightly", 3, 3)
    assert runtime.queue().size("claude-high") == 3
    assert batch_progress(batch_id) == {
        "id": batch_id,
        "pending": 3,
        "processing": 0,
        "completed": 0,
        "failed": 0,
        "cancelled": 0,
        "expired": 0,
        "total": 3,
        "percentage": 0.0,
        "finished": False,
        "mode": "jobs",
        "message_batch_id": None,
    }


def test_the_batch_runs_to_the_end_and_its_skyline_batch_finishes(
    runtime, services, fake_anthropic
):
    fake_anthropic.script(success("1"), bad_request("prompt is too long"), success("3"))
    batch_id = submit_batch(THREE)

    assert work_batches(runtime) == 0

    progress = batch_progress(batch_id)
    assert (progress["completed"], progress["failed"], progress["total"]) == (2, 1, 3)
    assert (progress["percentage"], progress["finished"]) == (100.0, True)
    record = skyline_batch(services, batch_id)
    assert (record.pending_jobs, record.failed_jobs, record.finished) == (1, 1, True)
    assert not record.cancelled  # one failure does not stop the others


def test_progress_counts_each_status_and_rounds_down(services):
    batch_id = submit_batch(THREE)
    first, second, _ = services.requests.list(batch_id=batch_id)
    services.requests.processing(first.id)
    services.requests.completed(first.id, Response("done", "end_turn", Usage(), 0.0))
    services.requests.processing(second.id)

    progress = batch_progress(batch_id)

    assert (progress["completed"], progress["processing"], progress["pending"]) == (1, 1, 1)
    assert (progress["percentage"], progress["finished"]) == (33.3, False)


def test_progress_is_only_the_owners_and_none_for_an_unknown_batch(services):
    batch_id = submit_batch(THREE, owner="team-a")

    assert batch_progress(batch_id, owner="team-a")["total"] == 3
    assert batch_progress(batch_id, owner="team-b") is None
    assert batch_progress("no-such-batch") is None


def test_progress_keeps_its_mode_once_the_skyline_batch_is_pruned(services):
    batch_id = submit_batch(THREE)
    assert services.dispatcher.workflows.batches.delete(batch_id)

    assert (batch_progress(batch_id)["mode"], batch_progress(batch_id)["total"]) == ("jobs", 3)


def test_every_bad_prompt_is_named_and_nothing_is_stored(runtime, services):
    prompts = [
        {"prompt": "fine"},
        {"prompt": " "},
        "not an object",
        {"prompt": "hi", "colour": "blue"},
        {"messages": [], "max_tokens": 0},
    ]

    with pytest.raises(RequestValidationError) as refused:
        submit_batch(prompts, priority="urgent", webhook_url="ftp://example.com", name="n" * 256)

    assert refused.value.errors == {
        "requests[1].prompt": "the prompt is required",
        "requests[2]": "must be an object with a prompt or messages",
        "requests[3]": "unknown field(s): colour",
        "requests[4].messages": "must be a non-empty list of {role, content} messages",
        "requests[4].max_tokens": "must be a whole number from 1 to 200,000",
        "priority": "must be one of high, normal, low",
        "webhook_url": "must be an http:// or https:// URL with a host",
        "name": "must be text of at most 255 characters",
    }
    assert services.requests.count() == 0
    assert services.dispatcher.workflows.batches.count() == 0
    assert runtime.queue().size("claude-normal") == 0


def test_an_empty_batch_is_refused(services):
    with pytest.raises(RequestValidationError) as refused:
        submit_batch([])

    assert refused.value.errors == {"requests": "must be a non-empty list of prompts"}


def test_cancel_cancels_the_pending_requests_whose_jobs_then_skip_them(
    runtime, services, fake_anthropic
):
    batch_id = submit_batch(THREE, owner="team-a")

    assert cancel_batch(batch_id, owner="team-b") == 0
    assert cancel_batch(batch_id, owner="team-a") == 3
    assert work_batches(runtime) == 0

    assert fake_anthropic.received == []
    assert batch_progress(batch_id)["cancelled"] == 3
    record = skyline_batch(services, batch_id)
    assert (record.cancelled, record.finished, record.failed_jobs) == (True, True, 0)
    assert cancel_batch(batch_id) == 0


def test_the_batch_webhook_arrives_once_the_whole_batch_has_finished(
    runtime, configure, fake_anthropic
):
    configure(webhook_secret=SecretStr(SECRET))
    fake_anthropic.script(success(), bad_request(), success())
    receiver = HttpReceiver()
    try:
        batch_id = submit_batch(THREE, webhook_url=receiver.url("/batches"))
        assert work_batches(runtime) == 0
    finally:
        receiver.close()

    [delivery] = receiver.requests
    assert delivery.headers["X-Skyline-Signature"] == signature(delivery.body, SECRET)
    event = json.loads(delivery.body)
    assert (event["type"], event["batch_id"], event["mode"]) == (
        "claude.batch.finished",
        batch_id,
        "jobs",
    )
    assert (event["completed"], event["failed"], event["total"], event["percentage"]) == (
        2,
        1,
        3,
        100.0,
    )
