"""The batch pages and their JSON: list, search, pages, detail, live progress, retry, cancel."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

import tests.workflow_jobs as wf
from core.batch_store import BatchRepository
from core.batches import batch, find_batch
from tests.dashboard.conftest import csrf_of

APP = ("--app", "tests.workflow_jobs")
READY = "skyline:{queue:default}"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def batches(app) -> BatchRepository:
    return app.state.dashboard.batches


@pytest.fixture
def work(skyline):
    """Run a worker until the default queue is empty."""

    def work() -> None:
        result = skyline("work", *APP, "--stop-when-empty")
        assert result.returncode == 0, result.stderr

    return work


@pytest.fixture
def half_failed(runtime, work) -> str:
    """A real batch, run by a real worker: one job succeeded, one failed for good."""
    created = (
        batch([wf.BatchedStep("ok"), wf.broken_step.prepare("x")])
        .name("nightly import")
        .allow_failures()
        .dispatch()
    )
    work()
    return created.id


def post(client, path: str, **headers: str):
    return client.post(path, data={"csrf_token": csrf_of(client, "/batches")}, headers=headers)


def audit_entries(app) -> list[tuple[str, str]]:
    entries, _ = app.state.dashboard.audit.page()
    return [(entry.action, entry.target) for entry in entries]


def test_the_list_shows_progress_and_totals_newest_first(client, sign_in, batches):
    first = batches.create(id="b-1", name="imports", total_jobs=4, options={}, created_at=T0)
    batches.record_success(first.id, "j1")
    batches.record_failure(first.id, "j2")
    batches.create(id="b-2", name="exports", total_jobs=2, options={}, created_at=T0 + timedelta(1))
    sign_in(client, "viewer")

    page = client.get("/batches")

    assert page.status_code == 200
    assert page.text.index("exports") < page.text.index("imports")
    row = page.text.split('href="/batches/b-1"')[1].split("</tr>")[0]
    assert re.search(r'<progress class="has-failures" value="1" max="4"', row)
    assert ">1<" in row and ">4<" in row, "succeeded of total"
    cells = re.findall(r'<td class="num">(.*?)</td>', row, re.S)
    assert [re.sub(r"<[^>]+>", "", c).strip() for c in cells] == ["1 / 4", "2", "1"]
    assert "running" in row


def test_the_list_searches_by_name_or_id_and_pages(client, sign_in, batches):
    for n in range(5):
        batches.create(
            id=f"id-{n}",
            name=f"nightly {n}",
            total_jobs=1,
            options={},
            created_at=T0 + timedelta(minutes=n),
        )
    batches.create(id="other", name="weekly", total_jobs=1, options={}, created_at=T0)
    sign_in(client, "viewer")

    first = client.get("/batches?q=night&per_page=2")
    last = client.get("/batches?q=night&per_page=2&page=3")
    by_id = client.get("/batches?q=oth")

    assert re.findall(r'href="/batches/([^"]+)"', first.text) == ["id-4", "id-3"]
    assert "Page 1 of 3" in first.text
    assert 'href="/batches?q=night&amp;per_page=2&amp;page=2"' in first.text
    assert re.findall(r'href="/batches/([^"]+)"', last.text) == ["id-0"]
    assert re.findall(r'href="/batches/([^"]+)"', by_id.text) == ["other"]
    nothing = client.get("/batches?q=monthly")
    assert "No batch matches" in nothing.text and "monthly" in nothing.text
    assert client.get("/batches?page=zero").status_code == 400


def test_without_batches_the_list_tells_how_to_dispatch_one(client, sign_in):
    sign_in(client, "viewer")

    page = client.get("/batches")

    assert "No batches yet" in page.text and ".dispatch()" in page.text
    assert "README" in page.text


def test_the_detail_shows_the_jobs_and_failures_of_a_real_batch(
    client, sign_in, batches, half_failed
):
    [failed_id] = batches.job_ids(half_failed, "failed")
    [completed_id] = batches.job_ids(half_failed, "completed")
    sign_in(client, "viewer")

    page = client.get(f"/batches/{half_failed}")
    succeeded = client.get(f"/batches/{half_failed}?status=completed")

    assert page.status_code == 200
    assert "nightly import" in page.text
    assert '<progress class="has-failures" value="1" max="2"' in page.text
    assert f'href="/job/{failed_id}"' in page.text
    assert "RuntimeError: step x broke" in page.text
    assert "broken_step" in page.text
    assert f'href="/job/{completed_id}"' not in page.text
    assert f'href="/job/{completed_id}"' in succeeded.text
    assert "finished with failures" in page.text
    assert "Allow failures" in page.text
    assert "Retry failed jobs" not in page.text, "a viewer gets no buttons"
    assert client.get(f"/batches/{half_failed}?status=lost").status_code == 400


def test_an_unknown_batch_is_404(client, sign_in):
    sign_in(client, "viewer")

    assert client.get("/batches/nope").status_code == 404
    assert "nope" in client.get("/api/batches/nope").json()["error"]


def test_the_progress_panel_polls_until_the_batch_finishes(app, client, sign_in, batches):
    batches.create(id="live", name="live", total_jobs=1, options={})
    sign_in(client, "viewer")
    trigger = f'hx-trigger="every {app.state.dashboard.settings.dashboard.refresh_s}s"'

    assert 'hx-get="/partials/batches/live"' in client.get("/batches/live").text
    assert trigger in client.get("/partials/batches/live").text
    batches.record_success("live", "only")
    finished = client.get("/partials/batches/live")
    assert finished.status_code == 200 and "hx-trigger" not in finished.text
    assert 'id="batch-progress"' in finished.text and "<html" not in finished.text


def test_retry_puts_the_failed_jobs_back_and_writes_the_audit_log(
    app, client, sign_in, redis_client, batches, half_failed, work
):
    [failed_id] = batches.job_ids(half_failed, "failed")
    failed_store = app.state.dashboard.failed
    sign_in(client, "operator")
    assert "Retry failed jobs" in client.get(f"/batches/{half_failed}").text

    response = post(client, f"/batches/{half_failed}/retry")

    assert response.status_code == 303
    assert response.headers["location"] == f"/batches/{half_failed}"
    assert redis_client.llen(READY) == 1
    retried_as = failed_store.get(failed_id).retried_by
    assert retried_as is not None
    assert ("batch.retry", half_failed) in audit_entries(app)
    assert "Retried 1 failed job of batch" in client.get(f"/batches/{half_failed}").text

    again = post(client, f"/batches/{half_failed}/retry")
    assert again.status_code == 303 and redis_client.llen(READY) == 1, "already in flight"

    work()  # the retry fails too: the next retry starts from that failure
    assert failed_store.get(retried_as) is not None
    post(client, f"/batches/{half_failed}/retry")
    assert redis_client.llen(READY) == 1
    assert failed_store.get(retried_as).retried_by is not None
    assert find_batch(half_failed).failed_jobs == 1


def test_cancel_cancels_an_unfinished_batch_and_writes_the_audit_log(app, client, sign_in, runtime):
    created = batch([wf.step.options(queue="nobody-works").prepare("a")]).name("stuck").dispatch()
    sign_in(client, "operator")
    assert "Cancel batch" in client.get(f"/batches/{created.id}").text

    response = post(client, f"/batches/{created.id}/cancel")

    assert response.status_code == 303
    assert find_batch(created.id).cancelled
    assert ("batch.cancel", created.id) in audit_entries(app)
    page = client.get(f"/batches/{created.id}")
    assert "Cancel batch" not in page.text and "cancelled" in page.text
    post(client, f"/batches/{created.id}/cancel")
    assert "had already finished or been cancelled" in client.get(f"/batches/{created.id}").text
    assert audit_entries(app).count(("batch.cancel", created.id)) == 1


def test_a_viewer_may_not_retry_or_cancel(app, client, sign_in, redis_client, half_failed):
    sign_in(client, "viewer")
    token = csrf_of(client, "/batches")

    for action in ("retry", "cancel"):
        assert post(client, f"/batches/{half_failed}/{action}").status_code == 403
        headers = {"X-CSRF-Token": token}
        assert (
            client.post(f"/api/batches/{half_failed}/{action}", headers=headers).status_code == 403
        )
    assert redis_client.llen(READY) == 0
    assert not find_batch(half_failed).cancelled
    assert audit_entries(app) == []


def test_a_batch_name_with_markup_is_escaped(client, sign_in, batches):
    batches.create(id="xss", name="<script>alert(1)</script>", total_jobs=1, options={})
    sign_in(client, "operator")

    for path in ("/batches", "/batches/xss", "/partials/batches/xss"):
        page = client.get(path)
        assert "<script>alert" not in page.text, path
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get("/batches/xss").text


def test_the_api_lists_and_shows_batches(app, client, half_failed, batches):
    token = app.state.dashboard.tokens.create("reader", "viewer")
    headers = {"Authorization": f"Bearer {token}"}

    listing = client.get("/api/batches?q=nightly", headers=headers).json()
    detail = client.get(f"/api/batches/{half_failed}", headers=headers).json()

    [row] = listing["data"]
    assert (row["id"], row["progress"], row["failed_jobs"], row["finished"]) == (
        half_failed,
        50,
        1,
        True,
    )
    assert listing["page"] == {"number": 1, "per_page": 50, "total": 1, "pages": 1}
    assert detail["data"]["name"] == "nightly import"
    assert detail["options"]["allow_failures"] is True
    assert detail["jobs"]["status"] == "failed"
    assert detail["jobs"]["ids"] == batches.job_ids(half_failed, "failed")
    assert client.get("/api/batches?page=-1", headers=headers).status_code == 400


def test_the_api_retries_and_cancels_for_an_operator_token(app, client, redis_client, half_failed):
    token = app.state.dashboard.tokens.create("ops", "operator")
    headers = {"Authorization": f"Bearer {token}"}

    retried = client.post(f"/api/batches/{half_failed}/retry", headers=headers)
    cancelled = client.post(f"/api/batches/{half_failed}/cancel", headers=headers)

    assert retried.status_code == 200
    body = retried.json()
    assert len(body["retried"]) == 1 and body["missing"] == body["problems"] == []
    assert redis_client.llen(READY) == 1
    assert cancelled.status_code == 409, "the batch had finished"
    assert audit_entries(app) == [("batch.retry", half_failed)]
