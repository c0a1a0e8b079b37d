"""Signing in and out, sessions, CSRF, security headers, and the routes' gate."""

from __future__ import annotations

import re

from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from dashboard.app import view_routes
from dashboard.auth import for_machines
from tests.dashboard.conftest import PASSWORD, csrf_of


def test_a_signed_out_browser_is_sent_to_the_login_page_and_back(client, app, sign_in):
    response = client.get("/jobs/failed?queue=emails")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fjobs%2Ffailed%3Fqueue%3Demails"

    app.state.dashboard.users.add("ops@example.com", PASSWORD, "viewer")
    form = {
        "email": "OPS@example.com ",
        "password": PASSWORD,
        "next": "/jobs/failed?queue=emails",
        "csrf_token": csrf_of(client),
    }
    response = client.post("/login", data=form)
    assert response.status_code == 303
    assert response.headers["location"] == "/jobs/failed?queue=emails"
    assert "ops@example.com" in client.get("/").text


def test_login_never_redirects_to_another_site(client, app):
    app.state.dashboard.users.add("ops@example.com", PASSWORD, "viewer")
    for target in ("https://evil.example", "//evil.example", "/\\evil.example"):
        form = {"email": "ops@example.com", "password": PASSWORD, "next": target}
        response = client.post("/login", data={**form, "csrf_token": csrf_of(client)})
        assert response.headers["location"] == "/"


def test_a_wrong_password_is_refused_without_saying_whether_the_account_exists(client, app):
    app.state.dashboard.users.add("ops@example.com", PASSWORD, "viewer")
    wrong = client.post(
        "/login",
        data={"email": "ops@example.com", "password": "nope", "csrf_token": csrf_of(client)},
    )
    unknown = client.post(
        "/login",
        data={"email": "who@example.com", "password": "nope", "csrf_token": csrf_of(client)},
    )
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong email or password." in wrong.text
    assert "Wrong email or password." in unknown.text
    assert client.get("/").status_code == 303


def test_sign_in_is_throttled_per_account(client, app):
    app.state.dashboard.users.add("ops@example.com", PASSWORD, "viewer")
    attempts = app.state.dashboard.settings.dashboard.auth.login_attempts
    bad = {"email": "ops@example.com", "password": "wrong password"}
    for _ in range(attempts):
        assert client.post("/login", data={**bad, "csrf_token": csrf_of(client)}).status_code == 401
    good = {"email": "ops@example.com", "password": PASSWORD, "csrf_token": csrf_of(client)}
    refused = client.post("/login", data=good)
    assert refused.status_code == 429
    assert "Too many failed sign-ins" in refused.text
    assert client.get("/").status_code == 303


def test_sign_out_ends_the_session(client, sign_in):
    sign_in(client)
    assert client.get("/").status_code == 200
    response = client.post("/logout", data={"csrf_token": csrf_of(client, "/")})
    assert response.status_code == 303
    assert client.get("/").status_code == 303


def test_a_removed_user_is_signed_out_at_once(client, app, sign_in):
    email = sign_in(client, "viewer")
    app.state.dashboard.users.remove(email)
    assert client.get("/").status_code == 303


def test_a_post_without_the_csrf_token_is_refused(client, sign_in):
    sign_in(client)
    assert client.post("/logout").status_code == 403
    assert client.post("/logout", data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/").status_code == 200  # still signed in: the forged logout did nothing


def test_a_post_from_another_origin_is_refused_even_with_the_token(client, sign_in):
    sign_in(client)
    token = csrf_of(client, "/")
    response = client.post(
        "/logout", data={"csrf_token": token}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 403
    assert client.post("/logout", headers={"X-CSRF-Token": token}).status_code == 303


def test_every_route_but_the_public_ones_needs_a_signed_in_user(app):
    """Enumerates the app's routes, so a route added later is checked too."""
    public = {"/login", "/health"}
    checked = 0
    with TestClient(app, follow_redirects=False) as client:
        for route in view_routes():
            if isinstance(route, Mount) or route.path in public:
                continue
            assert isinstance(route, Route)
            path = re.sub(r"\{[^}]+\}", "x", route.path)
            for method in sorted(route.methods - {"HEAD"}):
                response = client.request(method, path)
                expected = 401 if for_machines(path) else 303
                if method != "GET" and expected == 303:
                    assert response.status_code == 303, f"{method} {path}"
                else:
                    assert response.status_code == expected, f"{method} {path}"
                checked += 1
    assert checked >= 4


def test_health_answers_without_sign_in_and_reveals_nothing(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_pages_carry_security_headers_and_are_not_cached(client, sign_in):
    sign_in(client)
    headers = client.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == "no-store"
    assert client.get("/static/skyline.css").headers.get("cache-control") != "no-store"


def test_the_session_cookie_is_http_only_and_same_site(client, app):
    app.state.dashboard.users.add("ops@example.com", PASSWORD, "viewer")
    form = {"email": "ops@example.com", "password": PASSWORD, "csrf_token": csrf_of(client)}
    cookie = client.post("/login", data=form).headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


def test_every_state_changing_route_refuses_a_session_request_without_the_csrf_token(
    client, sign_in
):
    """Enumerates the app's routes: a POST or DELETE added later is checked too."""
    sign_in(client, "admin")
    checked = 0
    for route in view_routes():
        if isinstance(route, Mount):
            continue
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        for method in sorted(route.methods & {"POST", "PUT", "PATCH", "DELETE"}):
            response = client.request(method, path)
            assert response.status_code == 403, f"{method} {path}"
            assert "reload the page" in response.text
            checked += 1
    assert checked >= 10
