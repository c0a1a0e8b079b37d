"""The Claude request store on real SQL: each lifecycle write, scoping by owner, paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, update

from core.claude.cost import Usage
from core.claude.records import (
    ClaudeRequestRepository,
    NewRequest,
    Response,
    Status,
)
from core.models import ClaudeRequest

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture
def requests(engine) -> ClaudeRequestRepository:
    return ClaudeRequestRepository(engine)


def new(**changes) -> NewRequest:
    fields = dict(model="claude-sonnet-4-6", messages=MESSAGES, max_tokens=100, temperature=0.0)
    return NewRequest(**(fields | changes))


def answer(text: str = "hello") -> Response:
    return Response(text, "end_turn", Usage(10, 5, 2, 1), 0.0001)


def test_create_stores_a_pending_request_as_given(requests):
    created = requests.create(
        new(system="Be kind.", owner="team-a", priority="high", batch_id="b1"), now=T0
    )

    found = requests.get(created.id)
    assert found == created
    assert (found.status, found.owner, found.priority, found.batch_id) == (
        Status.PENDING,
        "team-a",
        "high",
        "b1",
    )
    assert (found.messages, found.system, found.created_at) == (MESSAGES, "Be kind.", T0)
    assert (found.attempts, found.usage, found.cost_usd, found.cached) == (0, Usage(), 0.0, False)


def test_get_scoped_to_an_owner_hides_other_owners_requests(requests):
    mine = requests.create(new(owner="ann"))

    assert requests.get(mine.id, owner="ann") is not None
    assert requests.get(mine.id, owner="bob") is None
    assert requests.get("no-such-id") is None


def test_list_is_newest_first_and_pages_by_owner_and_status(requests):
    ids = [requests.create(new(owner="ann"), now=T0 + timedelta(seconds=n)).id for n in range(5)]
    requests.create(new(owner="bob"), now=T0)
    requests.cancelled(ids[0])

    assert [r.id for r in requests.list(owner="ann", limit=2)] == [ids[4], ids[3]]
    assert [r.id for r in requests.list(owner="ann", limit=2, offset=2)] == [ids[2], ids[1]]
    assert [r.id for r in requests.list(status=Status.CANCELLED)] == [ids[0]]
    assert requests.count(owner="ann") == 5
    assert requests.count(owner="ann", status=Status.PENDING) == 4


def test_counts_give_every_status_of_a_batch(requests):
    ids = [requests.create(new(batch_id="b1")).id for _ in range(3)]
    requests.create(new(batch_id="b2"))
    requests.processing(ids[0])
    requests.completed(ids[0], answer())

    counts = requests.counts(batch_id="b1")

    assert counts == {status: 0 for status in Status} | {Status.COMPLETED: 1, Status.PENDING: 2}
    assert requests.counts(batch_id="empty") == {status: 0 for status in Status}


def test_processing_counts_attempts_and_keeps_the_first_start(requests):
    created = requests.create(new())

    first = requests.processing(created.id, now=T0)
    second = requests.processing(created.id, now=T0 + timedelta(minutes=1))

    assert (first.status, first.attempts, first.started_at) == (Status.PROCESSING, 1, T0)
    assert (second.attempts, second.started_at) == (2, T0)


@pytest.mark.parametrize("finish", ["cancelled", "completed", "failed"])
def test_a_finished_request_is_not_taken_again(requests, finish):
    created = requests.create(new())
    requests.processing(created.id)
    if finish == "completed":
        requests.completed(created.id, answer())
    else:
        getattr(requests, finish)(created.id)

    assert requests.processing(created.id) is None
    assert requests.get(created.id).attempts == 1


def test_completed_stores_the_response_and_clears_the_last_error(requests):
    created = requests.create(new())
    requests.processing(created.id)
    requests.retrying(created.id, "529 overloaded_error: Overloaded")

    done = requests.completed(created.id, answer("hi there"), now=T0)

    assert (done.status, done.response_text, done.stop_reason, done.error) == (
        Status.COMPLETED,
        "hi there",
        "end_turn",
        None,
    )
    assert (done.usage, done.cost_usd, done.completed_at) == (Usage(10, 5, 2, 1), 0.0001, T0)
    assert done.finished_at == T0


def test_completed_does_not_overwrite_a_cancel(requests):
    created = requests.create(new())
    requests.processing(created.id)
    requests.cancelled(created.id)

    assert requests.completed(created.id, answer()) is None
    assert requests.get(created.id).status is Status.CANCELLED


def test_failed_without_an_error_keeps_the_last_attempts_error(requests):
    created = requests.create(new())
    requests.processing(created.id)
    requests.retrying(created.id, "500 api_error: Internal server error")

    failed = requests.failed(created.id, now=T0)

    assert (failed.status, failed.error, failed.failed_at) == (
        Status.FAILED,
        "500 api_error: Internal server error",
        T0,
    )
    assert requests.failed(created.id, "later") is None  # the first failure stands


def test_cancel_is_scoped_to_the_owner(requests):
    created = requests.create(new(owner="ann"))

    assert requests.cancelled(created.id, owner="bob") is None
    cancelled = requests.cancelled(created.id, owner="ann", now=T0)

    assert (cancelled.status, cancelled.cancelled_at) == (Status.CANCELLED, T0)


def test_expired_takes_only_old_pending_requests(requests):
    old = requests.create(new(), now=T0)
    old_running = requests.create(new(), now=T0)
    requests.processing(old_running.id)
    recent = requests.create(new(), now=T0 + timedelta(hours=2))

    expired = requests.expired(T0 + timedelta(hours=1), now=T0 + timedelta(hours=3))

    assert expired == [old.id]
    assert requests.get(old.id).expired_at == T0 + timedelta(hours=3)
    assert requests.get(old_running.id).status is Status.PROCESSING
    assert requests.get(recent.id).status is Status.PENDING


def test_unreadable_messages_read_as_none(requests, engine):
    created = requests.create(new())
    with engine.begin() as connection:
        connection.execute(
            update(ClaudeRequest).where(ClaudeRequest.id == created.id).values(messages="{oops")
        )

    assert requests.get(created.id).messages == []


def test_the_table_has_the_owner_status_and_batch_indexes(engine):
    indexes = {
        ix["name"]: ix["column_names"]
        for ix in inspect(engine).get_indexes("skyline_claude_requests")
    }

    assert indexes["ix_skyline_claude_requests_owner_created"] == ["owner", "created_at"]
    assert indexes["ix_skyline_claude_requests_status_created"] == ["status", "created_at"]
    assert indexes["ix_skyline_claude_requests_batch"] == ["batch_id", "status"]
