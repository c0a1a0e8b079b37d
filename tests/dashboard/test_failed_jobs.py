"""Retrying and forgetting failed jobs from the pages and the API: the jobs really go back
on their queues, and every change is in the audit log."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from tests import jobs
from tests.dashboard.conftest import csrf_of
from tests.dashboard.test_jobs import ALWAYS_FAILS, failed_ids, queued, work


def fail(runtime, *prepared) -> list[str]:
    """Dispatch jobs that fail, run a worker until they have; their uuids."""
    ids = runtime.dispatcher.dispatch(list(prepared))
    work(runtime, "default", "other")
    assert queued(runtime) == [] and queued(runtime, "other") == []
    return ids


def audit(app) -> list[tuple[str, str, str, dict]]:
    entries, _ = app.state.dashboard.audit.page()
    return [(e.actor, e.action, e.target, e.detail) for e in reversed(entries)]


@pytest.fixture
def operator(client, sign_in) -> TestClient:
    sign_in(client, "operator")
    return client


def post_form(client: TestClient, path: str, **fields) -> object:
    form = {"csrf_token": csrf_of(client, "/jobs/failed"), **fields}
    return client.post(path, data=form)


# --- one at a time --------------------------------------------------------------------------


def test_retry_puts_the_job_back_on_its_queue_and_returns_to_the_filtered_list(
    app, runtime, operator
):
    [uuid] = fail(runtime, ALWAYS_FAILS.prepare(1))
    [failed_id] = failed_ids(runtime)

    response = post_form(operator, f"/jobs/failed/{failed_id}/retry", queue="default")

    assert response.status_code == 303
    assert response.headers["location"] == "/jobs/failed?queue=default"
    [retry] = queued(runtime)
    assert (retry.job_name, retry.body["retry_of"], retry.attempts) == (
        "tests.jobs.always_fails",
        uuid,
        0,
    )
    assert runtime.failed_store.get(failed_id).retried_by == retry.id
    assert audit(app) == [
        (
            "operator@example.com (session)",
            "failed.retry",
            str(failed_id),
            _retried(failed_id, retry.id),
        )
    ]
    assert "Retried 1 failed job." in operator.get(response.headers["location"]).text


def _retried(failed_id: int, new_id: str, **more) -> dict:
    return {"retried": {str(failed_id): new_id}, "unknown": [], "refused": {}, "skipped": 0} | more


def test_retry_from_the_job_page_returns_to_the_job_page(runtime, operator):
    [uuid] = fail(runtime, jobs.fails_itself.prepare())
    [failed_id] = failed_ids(runtime)

    response = post_form(operator, f"/jobs/failed/{failed_id}/retry", next=f"/job/{uuid}")

    assert response.headers["location"] == f"/job/{uuid}"
    assert len(queued(runtime)) == 1


def test_forget_removes_the_failed_job(app, runtime, operator):
    [uuid] = fail(runtime, jobs.fails_itself.prepare())
    [failed_id] = failed_ids(runtime)

    response = post_form(operator, f"/jobs/failed/{failed_id}/forget")

    assert response.status_code == 303
    assert runtime.failed_store.get(failed_id) is None
    page = operator.get(response.headers["location"])
    assert f"Forgot failed job {failed_id}" in page.text and uuid not in page.text
    assert queued(runtime) == []
    assert [(action, target) for _, action, target, _ in audit(app)] == [
        ("failed.forget", str(failed_id))
    ]


def test_an_unknown_failed_job_is_a_404(runtime, operator):
    assert post_form(operator, "/jobs/failed/999/retry").status_code == 404
    assert post_form(operator, "/jobs/failed/999/forget").status_code == 404


# --- many at a time ---------------------------------------------------------------------------


def test_retry_selected_retries_the_known_ids_and_names_the_unknown_ones(app, runtime, operator):
    fail(runtime, *(ALWAYS_FAILS.prepare(n) for n in range(3)))
    first, second, third = failed_ids(runtime)
    form = {"ids": [str(first), str(third), "424242"], "q": "always"}

    response = post_form(operator, "/jobs/failed/retry", **form)

    assert response.headers["location"] == "/jobs/failed?q=always"
    retried = {payload.body["retry_of"] for payload in queued(runtime)}
    stored = runtime.failed_store
    assert retried == {stored.get(first).uuid, stored.get(third).uuid}
    assert stored.get(second).retried_by is None
    flashed = operator.get(response.headers["location"]).text
    assert "Retried 2 failed jobs. No failed job with id 424242." in flashed
    [(_, action, _, detail)] = audit(app)
    assert action == "failed.retry_selected"
    assert set(detail["retried"]) == {str(first), str(third)} and detail["unknown"] == ["424242"]


def test_retry_selected_with_nothing_selected_says_so(runtime, operator):
    fail(runtime, jobs.fails_itself.prepare())

    response = post_form(operator, "/jobs/failed/retry")

    assert (
        "Select the failed jobs to retry first" in operator.get(response.headers["location"]).text
    )
    assert queued(runtime) == []


def test_retry_all_matching_retries_what_the_filter_matches_once(app, runtime, operator):
    fail(
        runtime,
        *(ALWAYS_FAILS.prepare(n) for n in range(3)),
        jobs.fails_itself.options(queue="other").prepare(),
    )

    response = post_form(operator, "/jobs/failed/retry-matching", queue="default")

    assert response.headers["location"] == "/jobs/failed?queue=default"
    assert len(queued(runtime)) == 3 and queued(runtime, "other") == []
    assert "Retried 3 failed jobs." in operator.get(response.headers["location"]).text
    again = post_form(operator, "/jobs/failed/retry-matching", queue="default")
    flashed = operator.get(again.headers["location"]).text
    assert "Retried 0 failed jobs. Left 3 alone that had been retried before." in flashed
    assert len(queued(runtime)) == 3
    actions = [(action, target) for _, action, target, _ in audit(app)]
    assert actions == [("failed.retry_matching", "queue=default")] * 2


def test_retry_all_matching_goes_through_more_than_one_chunk(app, runtime, operator, monkeypatch):
    monkeypatch.setattr("core.retrying.RETRY_CHUNK", 2)
    fail(runtime, *(jobs.fails_itself.prepare() for _ in range(5)))

    post_form(operator, "/jobs/failed/retry-matching")

    assert len(queued(runtime)) == 5
    assert all(r.retried_by for r in runtime.failed_store.list())


def test_retry_all_matching_leaves_what_failed_after_it_started(app, runtime, operator):
    fail(runtime, *(ALWAYS_FAILS.prepare(n) for n in range(3)))
    store = runtime.failed_store
    first, second, later = sorted(failed_ids(runtime))
    again = dataclasses.asdict(store.get(later))
    for generated in ("id", "retried_by", "retried_at"):
        del again[generated]
    store.record(**again | {"failed_at": datetime.now(UTC) + timedelta(minutes=1)})

    post_form(operator, "/jobs/failed/retry-matching")

    assert {p.body["retry_of"] for p in queued(runtime)} == {
        store.get(first).uuid,
        store.get(second).uuid,
    }
    assert store.get(later).retried_by is None
    [(_, _, _, detail)] = audit(app)
    assert set(detail["retried"]) == {str(first), str(second)}


def test_retry_all_matching_keeps_to_the_job_and_the_exception_search(app, runtime, operator):
    fail(
        runtime,
        ALWAYS_FAILS.prepare(1),
        ALWAYS_FAILS.prepare(22),
        jobs.fails_itself.prepare(),
        jobs.always_fails.options(queue="other", backoff=0).prepare(2),
    )
    [wanted] = failed_ids(runtime, queue="default", search="always fails 2")

    response = post_form(
        operator,
        "/jobs/failed/retry-matching",
        queue="default",
        job="tests.jobs.always_fails",
        q="fails 2",
    )

    assert [p.body["retry_of"] for p in queued(runtime)] == [runtime.failed_store.get(wanted).uuid]
    assert queued(runtime, "other") == []
    assert "Retried 1 failed job." in operator.get(response.headers["location"]).text
    [(_, action, target, _)] = audit(app)
    assert (action, target) == (
        "failed.retry_matching",
        "queue=default&job=tests.jobs.always_fails&q=fails+2",
    )


# --- the API ----------------------------------------------------------------------------------


@pytest.fixture
def bearer(app):
    def bearer(role: str) -> dict[str, str]:
        token = app.state.dashboard.tokens.create(f"{role}-script", role)
        return {"Authorization": f"Bearer {token}"}

    return bearer


def test_the_api_retries_and_forgets_one(app, runtime, client, bearer):
    headers = bearer("operator")
    fail(runtime, jobs.fails_itself.prepare(), jobs.fails_itself.prepare())
    first, second = failed_ids(runtime)

    retried = client.post(f"/api/failed/{first}/retry", headers=headers)
    forgotten = client.post(f"/api/failed/{second}/forget", headers=headers)

    assert retried.status_code == 200
    [retry] = queued(runtime)
    assert retried.json()["retried"] == [
        {"id": first, "uuid": runtime.failed_store.get(first).uuid, "new_id": retry.id}
    ]
    assert forgotten.json() == {"forgotten": second, "uuid": forgotten.json()["uuid"]}
    assert runtime.failed_store.get(second) is None
    assert [(actor, action) for actor, action, _, _ in audit(app)] == [
        ("operator-script (token)", "failed.retry"),
        ("operator-script (token)", "failed.forget"),
    ]
    assert client.post("/api/failed/999/retry", headers=headers).status_code == 404


def test_the_api_retries_by_ids_or_by_filter(runtime, client, bearer):
    headers = bearer("operator")
    fail(runtime, ALWAYS_FAILS.prepare(1), jobs.fails_itself.options(queue="other").prepare())
    [default_id] = failed_ids(runtime, queue="default")
    [other_id] = failed_ids(runtime, queue="other")

    by_ids = client.post("/api/failed/retry", json={"ids": [default_id, "nope"]}, headers=headers)
    by_filter = client.post(
        "/api/failed/retry", json={"filter": {"queue": "other"}}, headers=headers
    )

    assert [r["id"] for r in by_ids.json()["retried"]] == [default_id]
    assert by_ids.json()["unknown"] == ["nope"]
    assert [r["id"] for r in by_filter.json()["retried"]] == [other_id]
    assert len(queued(runtime)) == 1 and len(queued(runtime, "other")) == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"[]", 422),
        (b"{}", 422),
        (b'{"ids": [1], "filter": {}}', 422),
        (b'{"ids": "1"}', 422),
        (b'{"ids": [[1]]}', 422),
        (b'{"filter": {"tag": "vip"}}', 422),
        (b'{"filter": {"queue": 7}}', 422),
        (b'{"filter": "default"}', 422),
    ],
)
def test_a_bad_retry_body_says_what_is_wrong(runtime, client, bearer, body, status):
    headers = bearer("operator") | {"Content-Type": "application/json"}
    response = client.post("/api/failed/retry", content=body, headers=headers)
    assert response.status_code == status
    assert response.json()["error"]


# --- roles ------------------------------------------------------------------------------------

ACTIONS = [
    ("POST", "/jobs/failed/1/retry"),
    ("POST", "/jobs/failed/1/forget"),
    ("POST", "/jobs/failed/retry"),
    ("POST", "/jobs/failed/retry-matching"),
    ("POST", "/monitoring"),
    ("POST", "/monitoring/vip/remove"),
    ("POST", "/api/failed/1/retry"),
    ("POST", "/api/failed/1/forget"),
    ("POST", "/api/failed/retry"),
    ("POST", "/api/monitoring"),
    ("DELETE", "/api/monitoring/vip"),
]


def test_a_viewer_gets_403_on_every_action(app, runtime, client, sign_in, bearer):
    fail(runtime, jobs.fails_itself.prepare())
    app.state.dashboard.records.monitor("vip")
    sign_in(client, "viewer")
    token = csrf_of(client, "/jobs/failed")
    form = {"csrf_token": token, "ids": "1", "tag": "new"}
    body, viewer_token = {"ids": [1], "tag": "new"}, bearer("viewer")
    for method, path in ACTIONS:
        if path.startswith("/api/"):
            as_session = client.request(method, path, json=body, headers={"X-CSRF-Token": token})
            as_token = client.request(method, path, json=body, headers=viewer_token)
            assert as_session.status_code == as_token.status_code == 403, path
        else:
            assert client.request(method, path, data=form).status_code == 403, path
    assert queued(runtime) == [] and runtime.failed_store.count() == 1
    assert app.state.dashboard.records.monitored() == {"vip": 0}
    assert audit(app) == []


def test_a_payload_that_cannot_be_retried_is_reported_and_the_rest_retried(
    runtime, operator, client, bearer
):
    fail(runtime, jobs.fails_itself.prepare())
    [good] = failed_ids(runtime)
    unsigned = runtime.failed_store.record(
        uuid="c0ffee00-0000-4000-8000-000000000000",
        connection="redis",
        queue="default",
        job_name="tests.jobs.noop",
        payload='{"body": "{}", "sig": "forged"}',
        exception_class="PayloadError",
        message="bad signature",
        traceback="",
    )

    response = post_form(operator, "/jobs/failed/retry", ids=[str(unsigned), str(good)])

    flashed = operator.get(response.headers["location"]).text
    assert "Retried 1 failed job." in flashed
    assert f"Could not retry {unsigned}: failed job {unsigned} cannot be retried" in flashed
    assert len(queued(runtime)) == 1
    shown = operator.get("/job/c0ffee00-0000-4000-8000-000000000000")
    assert shown.status_code == 200 and "forged" in shown.text  # the payload as it was
    refused = client.post(f"/api/failed/{unsigned}/retry", headers=bearer("operator"))
    assert refused.status_code == 422 and "cannot be retried" in refused.json()["error"]
