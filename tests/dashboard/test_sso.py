"""Ways in besides the sign-in form: the application's gate and the trusted proxy's
header; and the refusal to serve without auth on a network address."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from core.config_model import ConfigError
from core.runtime import Runtime
from core.settings import Settings
from dashboard.app import create_app
from tests.dashboard.conftest import PASSWORD
from tests.dashboard.gate_app import ROLE_HEADER

PROXY_HEADER = "X-Forwarded-Email"
PROXY = ("127.0.0.1", 50000)
ELSEWHERE = ("10.9.8.7", 50000)
SIGNED_IN_AS = re.compile(r'<div class="nav-foot">\s*<span[^>]*>([^<]+)</span>')


def with_dashboard(settings: Settings, host: str = "127.0.0.1", **auth: Any) -> Settings:
    """The test's settings with [dashboard] host and [dashboard.auth] keys replaced."""
    dashboard = settings.dashboard
    changed = dashboard.model_copy(
        update={"host": host, "auth": dashboard.auth.model_copy(update=auth)}
    )
    return settings.model_copy(update={"dashboard": changed})


@pytest.fixture
def client_for(settings: Settings) -> Iterator:
    """A TestClient on an app built with changed auth settings, from a given address."""
    clients: list[TestClient] = []

    def make(client: tuple[str, int] = PROXY, **auth: Any) -> TestClient:
        app = create_app(Runtime(with_dashboard(settings, **auth)))
        test_client = TestClient(app, follow_redirects=False, client=client)
        clients.append(test_client.__enter__())
        return test_client

    yield make
    for test_client in clients:
        test_client.__exit__(None, None, None)


def who(client: TestClient, headers: dict[str, str]) -> str:
    """The name and role the page's navigation shows, e.g. 'gate · viewer'."""
    page = client.get("/", headers=headers)
    assert page.status_code == 200, page.status_code
    match = SIGNED_IN_AS.search(page.text)
    assert match, "the page names no principal"
    return match.group(1)


GATE = "tests.dashboard.gate_app:gate"


def test_the_gate_lets_in_whom_it_approves_with_the_role_it_names(client_for):
    client = client_for(gate=GATE)
    assert who(client, {ROLE_HEADER: "yes"}) == "gate · admin"
    assert who(client, {ROLE_HEADER: "viewer"}) == "gate · viewer"
    assert client.get("/audit", headers={ROLE_HEADER: "yes"}).status_code == 200
    assert client.get("/audit", headers={ROLE_HEADER: "viewer"}).status_code == 403


def test_the_gate_turns_away_whom_it_refuses(client_for):
    client = client_for(gate=GATE)
    for answer in ("no", "root", ""):
        response = client.get("/", headers={ROLE_HEADER: answer})
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")


def test_a_gate_that_cannot_be_loaded_stops_the_app_with_its_name(settings):
    missing = "tests.dashboard.gate_app:missing"
    with pytest.raises(ConfigError, match=re.escape(missing)):
        create_app(Runtime(with_dashboard(settings, gate=missing)))


def test_the_proxy_header_signs_in_from_a_trusted_address_with_the_proxy_role(client_for):
    client = client_for(PROXY, proxy_header=PROXY_HEADER, trusted_proxies=["127.0.0.1/32"])
    assert who(client, {PROXY_HEADER: "Ann@Example.com"}) == "ann@example.com · viewer"
    assert client.get("/audit", headers={PROXY_HEADER: "ann@example.com"}).status_code == 403


def test_a_proxy_user_with_an_account_gets_the_account_role(client_for, app):
    app.state.dashboard.users.add("ann@example.com", PASSWORD, "admin")
    client = client_for(
        PROXY, proxy_header=PROXY_HEADER, trusted_proxies=["127.0.0.0/8"], proxy_role="operator"
    )
    assert who(client, {PROXY_HEADER: "ann@example.com"}) == "ann@example.com · admin"
    assert who(client, {PROXY_HEADER: "bob@example.com"}) == "bob@example.com · operator"
    assert client.get("/audit", headers={PROXY_HEADER: "ann@example.com"}).status_code == 200


def test_the_proxy_header_is_ignored_from_an_untrusted_address(client_for):
    settings = {"proxy_header": PROXY_HEADER, "trusted_proxies": ["127.0.0.1/32"]}
    for address in (ELSEWHERE, ("testclient", 50000)):
        client = client_for(address, **settings)
        response = client.get("/", headers={PROXY_HEADER: "admin@example.com"})
        assert response.status_code == 303, address


def test_the_proxy_header_is_ignored_when_no_proxy_is_trusted(client_for):
    client = client_for(PROXY, proxy_header=PROXY_HEADER)
    assert client.get("/", headers={PROXY_HEADER: "admin@example.com"}).status_code == 303


def test_without_auth_the_dashboard_refuses_a_network_address(settings):
    for host in ("0.0.0.0", "192.168.1.20", "dashboard.example.com", "::"):
        with pytest.raises(ConfigError, match="without sign-in"):
            create_app(Runtime(with_dashboard(settings, host=host, enabled=False)))


def test_without_auth_on_loopback_everyone_is_a_local_admin(client_for):
    client = client_for(enabled=False)
    assert who(client, {}) == "local · admin"
    assert client.get("/audit").status_code == 200
