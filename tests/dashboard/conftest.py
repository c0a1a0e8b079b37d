"""Fixtures for the dashboard: the app on the test's Redis and SQL, a client, and users.

Signing in goes through the real login form (CSRF token included), so every test that
signs in also exercises the session and CSRF machinery.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from core.runtime import Runtime
from dashboard.app import create_app

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def app(runtime: Runtime) -> Starlette:
    return create_app(runtime)


@pytest.fixture
def client(app: Starlette) -> Iterator[TestClient]:
    with TestClient(app, follow_redirects=False) as client:
        yield client


def csrf_of(client: TestClient, path: str = "/login") -> str:
    """The CSRF token of the client's session, as a page's form carries it."""
    page = client.get(path)
    match = CSRF_FIELD.search(page.text)
    assert match, f"no CSRF field on {path} ({page.status_code})"
    return match.group(1)


@pytest.fixture
def sign_in(app: Starlette) -> Callable[..., str]:
    """Create a user with ``role`` and sign ``client`` in as them; returns the email."""
    users = app.state.dashboard.users

    def sign_in(client: TestClient, role: str = "admin", email: str | None = None) -> str:
        email = email or f"{role}@example.com"
        if users.by_email(email) is None:
            users.add(email, PASSWORD, role)
        form = {"email": email, "password": PASSWORD, "csrf_token": csrf_of(client)}
        response = client.post("/login", data=form)
        assert response.status_code == 303, response.text
        return email

    return sign_in
