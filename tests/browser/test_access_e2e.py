"""Who may do what in real Chromium, signing out, the keyboard, and a clean console."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser.conftest import MASTER, cell

pytestmark = pytest.mark.browser

CONTROLS = re.compile(r"^(Pause|Continue|Terminate)$")


@pytest.mark.slow
def test_a_viewer_sees_no_controls_and_may_not_pause_a_master(
    page: Page, sign_in, master, live_server
):
    master()
    sign_in("viewer")
    expect(cell(page, "Masters", MASTER, 2)).to_have_text("running")
    expect(page.get_by_role("button", name=CONTROLS)).to_have_count(0)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token

    response = page.request.post(
        f"{live_server.url}/masters/{MASTER}/pause", form={"csrf_token": token}
    )

    assert response.status == 403
    assert "This needs the operator role." in response.text()
    assert live_server.app.state.dashboard.audit.page() == ([], 0)
    page.reload()
    expect(cell(page, "Masters", MASTER, 2)).to_have_text("running")


def test_signing_out_from_the_nav_returns_to_the_login_page(page: Page, sign_in, live_server):
    sign_in("viewer")

    page.get_by_role("navigation", name="Main").get_by_role("button", name="Sign out").click()

    expect(page).to_have_url(f"{live_server.url}/login")
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_the_keyboard_reaches_the_skip_link_then_the_nav_with_a_visible_focus(page: Page, sign_in):
    sign_in("viewer")
    page.goto("/")

    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Tab")
    first_link = page.get_by_role("navigation", name="Main").get_by_role("link").first

    expect(first_link).to_be_focused()
    expect(first_link).to_have_css("outline-style", "solid")
    expect(first_link).to_have_css("outline-width", "3px")


def test_pages_log_no_errors_and_an_inline_style_would_be_caught(
    page: Page, sign_in, console_errors: list[str]
):
    sign_in("operator")
    for _ in range(2):  # the live part swaps in fresh HTML, which the CSP checks too
        with page.expect_response(re.compile(r"/partials/overview$")):
            pass
    assert console_errors == []

    def violation(message: ConsoleMessage) -> bool:
        return message.type == "error" and "CSP violation" in message.text

    with page.expect_console_message(violation) as reported:
        page.evaluate("document.body.setAttribute('style', 'color: red')")

    assert "style-src" in reported.value.text
    assert any("CSP violation" in error for error in console_errors)
    console_errors.clear()  # the violation was this test's own doing
