"""Fixtures for the browser tests: the dashboard served by uvicorn, Debian's Chromium driven
through Playwright, and a real master supervisor, all on the test's private Redis and SQL.

Every page collects its console errors, uncaught exceptions and Content-Security-Policy
violations; a test whose page logged any fails at teardown, so an inline style or script
that slips into a template shows up here even when no test looks for it.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Locator, Page, expect, sync_playwright
from starlette.applications import Starlette

from core.control import ControlRepository
from core.runtime import Runtime
from core.settings import Settings
from dashboard.app import create_app
from tests.conftest import ROOT, skyline_command, wait_until

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "correct horse battery"
REFRESH_S = 0.5  # the live parts of pages poll this often, so updates show within a second
# Waits and expect() assertions: a master starting its workers on a busy machine takes a while.
EXPECT_TIMEOUT_MS = 20_000
MASTER = "e2e-master"
POOLS = """
[environments.local.work]
queues = ["default", "emails"]
balance = "off"
processes = 1
"""
# Playwright injects this before any page script, past the CSP, so violations reach the log.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} (${event.blockedURI || "inline"})`);
});
"""


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test's settings with a short refresh, so live updates show fast."""
    dashboard = settings.dashboard.model_copy(update={"refresh_s": REFRESH_S})
    return settings.model_copy(update={"dashboard": dashboard})


@dataclass(frozen=True)
class LiveServer:
    url: str
    app: Starlette


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError):
        return False


@pytest.fixture
def live_server(runtime: Runtime) -> Iterator[LiveServer]:
    """The dashboard on a free loopback port, served by uvicorn in a background thread."""
    app = create_app(runtime)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    config = uvicorn.Config(
        app, lifespan="off", log_level="warning", access_log=False, timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    wait_until(lambda: _answers(f"{url}/health"), message=f"the dashboard at {url} did not answer")
    yield LiveServer(url, app)
    server.should_exit = True
    thread.join(timeout=10)
    listener.close()
    assert not thread.is_alive(), "the dashboard's server did not shut down"


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """One Chromium for the browser tests. Package scope, not session: while Playwright's sync
    API is open, its event loop counts as running in this thread, so any later test that
    calls ``asyncio.run`` would fail."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium; "
            "install it with `apt-get install chromium`",
            pytrace=False,
        )
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def console_errors() -> list[str]:
    """What the test's page logged as an error: console errors, exceptions, CSP violations."""
    return []


@pytest.fixture
def page(
    browser: Browser, live_server: LiveServer, console_errors: list[str], request
) -> Iterator[Page]:
    """A fresh browser context per test, on the live server; fails if the page logged errors."""
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1400, "height": 900}, color_scheme="light"
    )
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    page = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(f"{message.text} at {message.location.get('url', '?')}")

    page.on("console", on_console)
    page.on("pageerror", lambda error: console_errors.append(f"uncaught: {error}"))
    yield page
    context.close()
    assert not console_errors, f"{request.node.name}: the page logged errors: {console_errors}"


def submit_login(page: Page, email: str, password: str = PASSWORD) -> None:
    """Fill in and send the sign-in form the page shows."""
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture
def add_user(live_server: LiveServer) -> Callable[[str], str]:
    """Create a user with a role; returns the email (the password is ``PASSWORD``)."""
    users = live_server.app.state.dashboard.users

    def add(role: str) -> str:
        email = f"{role}@example.com"
        if users.by_email(email) is None:
            users.add(email, PASSWORD, role)
        return email

    return add


@pytest.fixture
def sign_in(page: Page, add_user: Callable[[str], str]) -> Callable[[str], str]:
    """Sign the page in, through the login form, as a new user with ``role``."""

    def sign_in(role: str = "operator") -> str:
        email = add_user(role)
        page.goto("/login")
        submit_login(page, email)
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        return email

    return sign_in


@pytest.fixture
def screenshot(page: Page) -> Callable[[str], Path]:
    """Save the whole page as docs/screenshots/<name>.png, for the README's tour."""

    def take(name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@dataclass(frozen=True)
class RunningMaster:
    name: str
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (the master stops its workers), then kill whatever is left."""
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()


@pytest.fixture
def master(
    runtime: Runtime, worker_env: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[], RunningMaster]]:
    """Start `skyline start` (one worker for "default" and "emails") and wait for its
    heartbeat; it is stopped, with its workers, at teardown."""
    config = tmp_path / "skyline.toml"
    config.write_text(POOLS)
    worker_env["SKYLINE_CONFIG"] = str(config)
    control = ControlRepository(runtime.queue().client, runtime.dispatcher.keys)
    started: list[subprocess.Popen] = []

    def start() -> RunningMaster:
        log_path = tmp_path / f"{MASTER}.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                skyline_command("-v", "start", "--name", MASTER),
                env=worker_env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        running = RunningMaster(MASTER, process, log_path)

        def beating() -> bool:
            assert process.poll() is None, f"the master exited:\n{running.log()}"
            return any(beat.name == MASTER for beat in control.alive("master"))

        wait_until(beating, timeout_s=30, message=f"no heartbeat from the master; see {log_path}")
        return running

    yield start
    for process in started:
        _stop(process)


def cell(page: Page, region: str, row: str, column: int) -> Locator:
    """A cell of the row that names ``row`` in the table of the region titled ``region``."""
    table_row = page.get_by_role("region", name=region).get_by_role("row").filter(has_text=row)
    return table_row.get_by_role("cell").nth(column)


def figure(page: Page, label: str) -> Locator:
    """The value of the overview's figure card labelled ``label``."""
    return page.locator(".stat").filter(has_text=label).locator(".stat-value")
