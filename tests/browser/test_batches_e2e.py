"""A batch's page in real Chromium: its progress bar fills up as the master runs its jobs,
without a reload, and stops polling once the batch has finished."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from core.batches import batch
from tests import jobs

pytestmark = pytest.mark.browser

JOBS = 6
JOB_S = 0.5  # one worker runs them one after the other: several polls see the bar move
# Runs in the page (past the CSP, as Playwright's evaluate does): every value the bar
# shows, in order, however often htmx swaps the panel.
WATCH_THE_BAR = """() => {
  window.barValues = [];
  const note = () => {
    const bar = document.querySelector("#batch-progress progress");
    const value = bar && Number(bar.getAttribute("value"));
    if (bar && window.barValues.at(-1) !== value) window.barValues.push(value);
  };
  note();
  new MutationObserver(note).observe(document.body, {childList: true, subtree: true});
}"""


def stat(page: Page, label: str) -> Locator:
    """The value of the progress panel's figure labelled exactly ``label``."""
    labelled = page.locator(".stat-label").get_by_text(label, exact=True)
    return page.locator("#batch-progress .stat").filter(has=labelled).locator(".stat-value")


@pytest.mark.slow
def test_the_progress_bar_fills_up_as_the_jobs_complete_without_a_reload(
    page: Page, sign_in, master, runtime
):
    pending = batch([jobs.slow.prepare(n, JOB_S) for n in range(JOBS)]).name("resize album")
    started = pending.dispatch()
    sign_in("viewer")
    page.goto(f"/batches/{started.id}")
    progress = page.get_by_role("region", name="Progress", exact=True)
    bar = progress.locator("progress")
    expect(bar).to_have_attribute("max", str(JOBS))
    expect(bar).to_have_attribute("value", "0")
    expect(progress.locator(".badge")).to_have_text("running")
    expect(progress.locator("dd").filter(has_text="not yet")).to_be_visible()
    page.evaluate("window.skylineMarker = 'same page'")
    page.evaluate(WATCH_THE_BAR)

    master()

    expect(bar).to_have_attribute("value", str(JOBS))
    expect(progress.locator(".badge")).to_have_text("completed")
    expect(progress.locator(".batch-percent")).to_have_text("100%")
    expect(stat(page, "Succeeded")).to_have_text(str(JOBS))
    expect(stat(page, "Pending")).to_have_text("0")
    expect(progress.locator("dd time")).to_have_count(2)  # created, and now finished too
    expect(page.locator("#batch-progress")).not_to_have_attribute("hx-get", re.compile(".*"))
    assert page.evaluate("window.skylineMarker") == "same page", "the page was reloaded"
    values = page.evaluate("window.barValues")
    assert values == sorted(values) and values[0] == 0 and values[-1] == JOBS, values
    assert any(0 < value < JOBS for value in values), f"the bar jumped to the end: {values}"
