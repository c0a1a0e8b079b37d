"""The overview in real Chromium: signing in, live updates as jobs flow, pause and continue."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Dialog, Page, expect

from core.queue import RedisQueue
from tests import jobs
from tests.browser.conftest import MASTER, cell, figure, submit_login
from tests.jobs import runs

pytestmark = pytest.mark.browser

PENDING = 1  # the workload table's column of ready jobs
STATUS = 2  # the masters table's status column


def stays_pending(queue: RedisQueue, name: str, duration_s: float) -> None:
    """The one bounded wait that is itself the assertion: nothing takes the job meanwhile."""
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline:
        assert queue.sizes(name)["ready"] == 1, "a paused master's worker took a job"
        time.sleep(0.05)


@pytest.mark.slow
def test_signing_in_through_the_form_shows_the_overview(
    page: Page, add_user, master, runtime, live_server, screenshot
):
    master()
    runtime.dispatcher.dispatch(
        [
            *(jobs.noop.prepare(n) for n in range(12)),
            *(jobs.noop.options(queue="emails").prepare(n) for n in range(5)),
            jobs.fails_itself.prepare(),
        ]
    )
    email = add_user("operator")

    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    screenshot("login")
    submit_login(page, email)

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_contain_text(f"{email} · operator")
    expect(figure(page, "Status")).to_have_text("Active")
    expect(cell(page, "Masters", MASTER, STATUS)).to_have_text("running")
    expect(figure(page, "Failed past 7 days")).to_have_text("1")
    expect(figure(page, "Jobs past hour")).to_have_text("18")
    expect(cell(page, "Current workload", "emails", PENDING)).to_have_text("0")
    supervisors = page.get_by_role("region", name="Supervisors", exact=True)
    expect(supervisors).to_contain_text("(0 busy)")  # its heartbeat has caught up too
    screenshot("overview")


@pytest.mark.slow
def test_the_overview_follows_the_jobs_without_a_reload(page: Page, sign_in, master, runtime):
    sign_in("viewer")
    expect(page.get_by_text("No queues yet")).to_be_visible()
    page.evaluate("window.skylineMarker = 'same page'")

    runtime.dispatcher.dispatch([jobs.noop.prepare(n) for n in range(8)])

    pending = cell(page, "Current workload", "default", PENDING)
    expect(pending).to_have_text("8")
    expect(figure(page, "Jobs past hour")).to_have_text("0")
    expect(figure(page, "Status")).to_have_text("Inactive")

    master()

    expect(cell(page, "Masters", MASTER, STATUS)).to_have_text("running")
    expect(pending).to_have_text("0")
    expect(figure(page, "Jobs past hour")).to_have_text("8")
    assert page.evaluate("window.skylineMarker") == "same page", "the page was reloaded"


@pytest.mark.slow
def test_pause_and_continue_from_the_overview(
    page: Page, sign_in, master, runtime, record_dir, live_server
):
    master()
    sign_in("operator")
    jobs.noop.dispatch(1)
    expect(figure(page, "Jobs past hour")).to_have_text("1")  # the worker is up and working
    confirmations: list[str] = []

    def confirm(dialog: Dialog) -> None:
        confirmations.append(dialog.message)
        dialog.accept()

    page.on("dialog", confirm)
    masters = page.get_by_role("region", name="Masters", exact=True)
    expect(masters.get_by_role("button", name="Terminate")).to_have_count(0)  # admins only

    masters.get_by_role("button", name="Pause").click()

    expect(page.get_by_role("status").filter(has_text=f"Paused master {MASTER}.")).to_be_visible()
    expect(cell(page, "Masters", MASTER, STATUS)).to_have_text("paused")
    expect(figure(page, "Status")).to_have_text("Paused")
    assert confirmations[0].startswith(f"Pause master {MASTER}?")
    jobs.noop.dispatch(2)
    stays_pending(runtime.queue(), "default", duration_s=2.0)
    assert [run["n"] for run in runs(record_dir, "noop")] == [1]

    masters.get_by_role("button", name="Continue").click()

    expect(cell(page, "Masters", MASTER, STATUS)).to_have_text("running")
    expect(cell(page, "Current workload", "default", PENDING)).to_have_text("0")
    expect(figure(page, "Jobs past hour")).to_have_text("2")
    assert [run["n"] for run in runs(record_dir, "noop")] == [1, 2]
    assert confirmations[1] == f"Continue master {MASTER}?"
    entries, _ = live_server.app.state.dashboard.audit.page()
    assert [(e.actor, e.action, e.target) for e in entries] == [
        ("operator@example.com (session)", "master.continue", MASTER),
        ("operator@example.com (session)", "master.pause", MASTER),
    ]
