"""``skyline user``, ``skyline token``, ``skyline dashboard`` and ``skyline up``, run as
the real command against the test's Redis and SQL."""

from __future__ import annotations

import gc
import json
import re
import socket
import subprocess
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2 as httpx
import psutil
import pytest

from dashboard.server import FIRST_ADMIN, create_first_admin, freeze_startup_objects
from tests.conftest import ROOT, URL, printed, skyline_command, stop, wait_until
from tests.dashboard.conftest import CSRF_FIELD, PASSWORD, csrf_of
from tests.jobs import noop, runs

CREDENTIALS = re.compile(rf"First admin: {re.escape(FIRST_ADMIN)}  password: (\S+)")
# How long a stop may take on a busy test machine: the dashboard stops its server, `up`
# also waits for the master, which lets every worker finish its job and exit.
DASHBOARD_STOP_S = 10
UP_STOP_S = 20


def add_user(skyline, email: str, role: str = "operator", password: str = PASSWORD):
    return skyline("user", "add", email, "--role", role, "--password-stdin", input=password + "\n")


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    return line


def test_user_add_reads_the_password_from_stdin_and_the_user_can_sign_in(skyline, client):
    result = add_user(skyline, "Ops@Example.com")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "Added ops@example.com (operator)."

    form = {"email": "ops@example.com", "password": PASSWORD, "csrf_token": csrf_of(client)}
    assert client.post("/login", data=form).status_code == 303
    assert client.get("/").status_code == 200


def test_user_add_asks_for_the_password_twice(skyline, app):
    typed = skyline("user", "add", "a@example.com", "--role", "viewer", input=f"{PASSWORD}\n" * 2)
    assert typed.returncode == 0, typed.stderr
    assert app.state.dashboard.users.authenticate("a@example.com", PASSWORD)

    mistyped = skyline(
        "user", "add", "b@example.com", "--role", "viewer", input=f"{PASSWORD}\nother\n" * 3
    )
    assert mistyped.returncode != 0
    assert app.state.dashboard.users.by_email("b@example.com") is None


def test_adding_a_user_twice_is_refused_in_one_line(skyline):
    assert add_user(skyline, "ops@example.com").returncode == 0
    error = one_line_error(add_user(skyline, "ops@example.com", "admin"))
    assert error == "Error: a user ops@example.com exists already (remove it first)"


def test_a_short_password_or_a_bad_email_is_refused_in_one_line(skyline):
    assert "at least 12 characters" in one_line_error(add_user(skyline, "a@b.c", password="short"))
    assert "is not an email address" in one_line_error(add_user(skyline, "nobody"))
    unknown_role = add_user(skyline, "a@b.c", role="root")
    assert unknown_role.returncode == 2 and "viewer" in unknown_role.stderr


def test_user_list_shows_users_and_never_a_password(skyline):
    add_user(skyline, "ops@example.com", "admin")
    listed = skyline("user", "list", "--json")
    [user] = json.loads(listed.stdout)
    assert (user["email"], user["role"], user["last_login_at"]) == (
        "ops@example.com",
        "admin",
        None,
    )
    table = skyline("user", "list").stdout
    assert "ops@example.com" in table and "admin" in table
    assert PASSWORD not in listed.stdout + table


def test_user_remove_signs_the_user_out_and_names_an_unknown_user(skyline, client, sign_in):
    email = sign_in(client, "viewer")
    result = skyline("user", "remove", email)
    assert result.returncode == 0 and f"Removed {email}." in result.stdout
    assert client.get("/").status_code == 303
    assert "no user" in one_line_error(skyline("user", "remove", email))


def test_a_token_is_shown_once_and_works_as_a_bearer_token_until_revoked(skyline, client):
    created = skyline("token", "add", "deploy-bot", "--role", "operator")
    assert created.returncode == 0, created.stderr
    assert "cannot be shown again" in created.stdout
    token = created.stdout.strip().splitlines()[-1]
    bearer = {"Authorization": f"Bearer {token}"}

    assert client.get("/", headers=bearer).status_code == 200
    assert client.get("/audit", headers=bearer).status_code == 403  # an operator's token
    listed = skyline("token", "list", "--json").stdout
    assert [(t["name"], t["role"]) for t in json.loads(listed)] == [("deploy-bot", "operator")]
    assert token not in listed

    assert skyline("token", "revoke", "deploy-bot").returncode == 0
    assert client.get("/", headers=bearer).status_code == 303


def test_token_names_are_unique_and_an_unknown_one_cannot_be_revoked(skyline):
    assert skyline("token", "add", "ci", "--role", "viewer").returncode == 0
    again = one_line_error(skyline("token", "add", "ci", "--role", "admin"))
    assert again == "Error: a token named 'ci' exists already (revoke it first)"
    assert "no token named 'nope'" in one_line_error(skyline("token", "revoke", "nope"))


def test_user_and_token_changes_show_in_the_audit_log(skyline, client, sign_in):
    add_user(skyline, "ops@example.com")
    skyline("token", "add", "ci", "--role", "viewer")
    sign_in(client, "admin")
    page = client.get("/audit").text
    assert "user.add" in page and "ops@example.com" in page
    assert "token.add" in page and "(cli)" in page


def test_the_first_admin_is_made_only_on_a_fresh_install(app):
    users = app.state.dashboard.users
    password = create_first_admin(users)
    assert password and users.authenticate(FIRST_ADMIN, password).role == "admin"
    assert create_first_admin(users) is None
    assert users.count() == 1


@pytest.fixture
def background(worker_env: dict[str, str], record_dir: Path) -> Iterator[Callable]:
    """Start a long-running ``skyline`` command; its output goes to a file."""
    processes: list[tuple[subprocess.Popen, Path]] = []

    def start(*args: str) -> tuple[subprocess.Popen, Path]:
        log_path = record_dir / f"{args[0]}-{len(processes)}.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                skyline_command(*args),
                env=worker_env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        processes.append((process, log_path))
        return process, log_path

    yield start
    for process, _ in processes:
        for child in _descendants(process):
            child.kill()
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def _descendants(process: subprocess.Popen) -> list[psutil.Process]:
    try:
        return psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def test_skyline_dashboard_serves_on_its_port_and_stops_on_sigterm(background, app):
    app.state.dashboard.users.add("ops@example.com", PASSWORD, "admin")  # not a fresh install
    process, log_path = background("dashboard", "--port", "0", "--first-admin")
    url = printed(log_path, URL)

    assert httpx.get(f"{url}/health").json() == {"status": "ok"}
    login = httpx.get(f"{url}/login")
    assert login.status_code == 200 and CSRF_FIELD.search(login.text)
    assert httpx.get(f"{url}/").status_code == 303
    assert stop(process, DASHBOARD_STOP_S) < DASHBOARD_STOP_S
    assert "First admin" not in log_path.read_text()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/health")


def test_skyline_dashboard_refuses_a_network_address_without_auth(skyline, worker_env, tmp_path):
    config = tmp_path / "skyline.toml"
    config.write_text("[dashboard.auth]\nenabled = false\n")
    worker_env["SKYLINE_CONFIG"] = str(config)
    error = one_line_error(skyline("dashboard", "--host", "0.0.0.0", "--port", "0"))
    assert "without sign-in" in error and "0.0.0.0" in error


def test_skyline_dashboard_says_when_its_port_is_taken(skyline):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        error = one_line_error(skyline("dashboard", "--port", str(port)))
    assert f"cannot listen on 127.0.0.1:{port}" in error


def sign_in_over_http(browser: httpx.Client, email: str, password: str) -> None:
    token = CSRF_FIELD.search(browser.get("/login").text).group(1)
    form = {"email": email, "password": password, "csrf_token": token}
    response = browser.post("/login", data=form)
    assert response.status_code == 303 and response.headers["location"] == "/", response.text


@pytest.mark.slow
def test_skyline_up_runs_workers_and_the_dashboard_and_stops_both(background, runtime, record_dir):
    process, log_path = background("up", "--port", "0")
    url = printed(log_path, URL)
    password = printed(log_path, CREDENTIALS)

    with httpx.Client(base_url=url, follow_redirects=False) as browser:
        sign_in_over_http(browser, FIRST_ADMIN, password)
        assert FIRST_ADMIN in browser.get("/").text
    noop.dispatch(7)
    wait_until(lambda: runs(record_dir, "noop"), timeout_s=30, message=log_path.read_text())
    children = _descendants(process)
    assert len(children) >= 3  # the master, its worker, the dashboard

    assert stop(process, UP_STOP_S) < UP_STOP_S, log_path.read_text()
    wait_until(lambda: not any(child.is_running() for child in children), timeout_s=5)
    assert log_path.read_text().count(password) == 1


@pytest.mark.slow
def test_skyline_up_stops_everything_when_the_dashboard_cannot_start(skyline):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = skyline("up", "--port", str(port), timeout=UP_STOP_S * 3)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "the dashboard exited with 1" in result.stderr


def test_start_up_objects_are_frozen_out_of_full_collections_and_garbage_is_not():
    class Node:
        pass

    node = Node()
    node.itself = node  # a cycle: only the collector frees it
    garbage = weakref.ref(node)
    del node
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() > 10_000  # the modules, classes and functions loaded
        assert garbage() is None
    finally:
        gc.unfreeze()
