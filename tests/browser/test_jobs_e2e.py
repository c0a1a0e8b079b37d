"""Failed jobs in real Chromium: an operator retries one and sees it complete; a viewer
reads the list but gets no buttons, and the server refuses the viewer's retry."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Dialog, Locator, Page, expect

from core.runtime import Runtime
from tests import jobs
from tests.conftest import wait_until
from tests.jobs import runs

pytestmark = pytest.mark.browser

JOB = "tests.jobs.fails_unless_retried"
EXCEPTION = "RuntimeError: order 7: the payment gateway timed out"
CHANGES = re.compile(r"^(Retry|Forget|Retry selected|Retry all matching.*)$")


def failed_row(page: Page, name: str = JOB) -> Locator:
    """The row of the failed job ``name`` in the failed list."""
    listing = page.get_by_role("region", name="Failed jobs", exact=True)
    return listing.get_by_role("row").filter(has_text=name)


def fail_one(runtime: Runtime, run_worker) -> tuple[str, int]:
    """Dispatch a job that fails its first run and let ``run_worker`` run it; its id and
    its number in the failed store."""
    [job_id] = runtime.dispatcher.dispatch([jobs.fails_unless_retried.prepare(7)])
    run_worker()
    failure = wait_until(
        lambda: runtime.failed_store.get(job_id), timeout_s=30, message="the job did not fail"
    )
    return job_id, failure.id


@pytest.mark.slow
def test_retrying_a_failed_job_from_the_list_runs_it_again_to_completion(
    page: Page, sign_in, master, runtime, record_dir, live_server
):
    job_id, failed_id = fail_one(runtime, master)
    sign_in("operator")
    confirmations: list[str] = []

    def confirm(dialog: Dialog) -> None:
        confirmations.append(dialog.message)
        dialog.accept()

    page.on("dialog", confirm)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Failed").click()
    row = failed_row(page)
    expect(row).to_contain_text(EXCEPTION)
    expect(row.get_by_title(job_id, exact=True)).to_have_text(job_id[:8])

    row.get_by_role("button", name="Retry", exact=True).click()

    expect(page.get_by_role("status").filter(has_text="Retried 1 failed job.")).to_be_visible()
    expect(page).to_have_url(f"{live_server.url}/jobs/failed")
    assert confirmations == [f"Retry failed job {failed_id} ({JOB})?"]
    retry_id = runtime.failed_store.get(failed_id).retried_by
    assert retry_id and retry_id != job_id
    badge = row.get_by_role("link", name="retried", exact=True)
    expect(badge).to_have_attribute("href", f"/job/{retry_id}")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Completed").click()

    completed = page.get_by_role("region", name="Completed jobs", exact=True)
    retried = completed.get_by_role("row").filter(has=page.get_by_title(retry_id, exact=True))
    expect(retried).to_contain_text(JOB)
    expect(retried.get_by_role("cell").nth(4)).to_have_text("completed")
    assert [run["retry_of"] for run in runs(record_dir, "fails_unless_retried")] == [None, job_id]
    entries, _ = live_server.app.state.dashboard.audit.page()
    assert [(e.actor, e.action, e.target) for e in entries] == [
        ("operator@example.com (session)", "failed.retry", str(failed_id))
    ]


def test_a_viewer_sees_failed_jobs_without_buttons_and_may_not_retry_one(
    page: Page, sign_in, skyline, runtime, live_server
):
    job_id, failed_id = fail_one(runtime, lambda: skyline("work", "default", "--stop-when-empty"))
    sign_in("viewer")

    page.goto("/jobs/failed")
    expect(failed_row(page)).to_contain_text(EXCEPTION)
    expect(page.get_by_role("button", name=CHANGES)).to_have_count(0)
    expect(page.get_by_role("checkbox")).to_have_count(0)
    page.goto(f"/job/{job_id}")
    expect(page.get_by_role("heading", name="Exception")).to_be_visible()
    expect(page.get_by_role("button", name=CHANGES)).to_have_count(0)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token

    for change in ("retry", "forget"):
        response = page.request.post(
            f"{live_server.url}/jobs/failed/{failed_id}/{change}", form={"csrf_token": token}
        )
        assert response.status == 403, change
        assert "This needs the operator role." in response.text()

    assert runtime.failed_store.get(failed_id).retried_by is None
    assert runtime.queue().sizes("default")["ready"] == 0
    assert live_server.app.state.dashboard.audit.page() == ([], 0)
