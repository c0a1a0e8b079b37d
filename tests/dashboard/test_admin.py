"""The admin pages: the audit log and the (read-only) users and tokens."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import update

from core.control import ControlRepository
from core.models import AuditEntry, User
from tests.dashboard.conftest import csrf_of


def rows(page: str) -> list[str]:
    """The table rows of a page body, header excluded."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)


def test_the_audit_log_shows_what_was_recorded_newest_first(client, app, sign_in):
    audit = app.state.dashboard.audit
    audit.record("ops@example.com (session)", "job.retry", "job-1", {"queue": "emails"}, "10.0.0.7")
    audit.record("ci (token)", "failed.forget", "42", {"count": 3, "ids": [4, 2]}, None)
    sign_in(client, "admin")

    page = client.get("/audit")

    assert page.status_code == 200
    newest, oldest = rows(page.text)
    assert "ci (token)" in newest and "failed.forget" in newest and "42" in newest
    assert "count:</span> 3" in newest and "ids:</span> [4, 2]" in newest
    assert "ops@example.com (session)" in oldest and "job.retry" in oldest
    assert "queue:</span> emails" in oldest and "10.0.0.7" in oldest
    assert "just now" in oldest


def test_pausing_a_master_from_the_dashboard_shows_in_the_audit_log(client, app, sign_in):
    dash = app.state.dashboard
    ControlRepository(dash.client, dash.keys).beat("master", "m1", "running", {"host": "h1"})
    email = sign_in(client, "admin")

    response = client.post("/masters/m1/pause", data={"csrf_token": csrf_of(client, "/")})

    assert response.status_code == 303
    [entry] = rows(client.get("/audit").text)
    assert f"{email} (session)" in entry
    assert "master.pause" in entry and "m1" in entry
    assert "testclient" in entry  # the address the request came from


def test_audit_entries_are_escaped(client, app, sign_in):
    app.state.dashboard.audit.record("x", "job.retry", "<script>alert(1)</script>", {"k": "<b>"})
    sign_in(client, "admin")
    page = client.get("/audit").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page
    assert "<b>" not in page


def test_the_audit_log_is_paged(client, app, sign_in):
    for n in range(5):
        app.state.dashboard.audit.record("ops", "job.retry", f"target-{n}")
    sign_in(client, "admin")

    first = client.get("/audit?per_page=2")
    last = client.get("/audit?per_page=2&page=3")

    assert ["target-4" in r for r in rows(first.text)] == [True, False]
    assert "target-3" in rows(first.text)[1]
    assert "Page 1 of 3" in first.text and 'href="/audit?page=2&amp;per_page=2"' in first.text
    assert len(rows(last.text)) == 1 and "target-0" in rows(last.text)[0]
    assert "Page 3 of 3" in client.get("/audit?per_page=2&page=99").text


@pytest.mark.parametrize("query", ["page=0", "page=two", "per_page=-1"])
def test_a_bad_audit_page_number_is_a_400(client, sign_in, query):
    sign_in(client, "admin")
    response = client.get(f"/audit?{query}")
    assert response.status_code == 400
    assert "whole number" in response.text


def test_an_empty_audit_log_says_what_will_appear(client, sign_in):
    sign_in(client, "admin")
    page = client.get("/audit")
    assert "Nothing changed yet" in page.text
    assert "<table" not in page.text


@pytest.mark.parametrize("role", ["viewer", "operator"])
def test_only_admins_see_the_audit_log_and_the_users(client, sign_in, role):
    sign_in(client, role)
    assert client.get("/audit").status_code == 403
    assert client.get("/users").status_code == 403
    assert 'href="/audit"' not in client.get("/").text


def test_the_users_page_lists_users_and_tokens_but_never_a_token(client, app, sign_in):
    dash = app.state.dashboard
    secret = dash.tokens.create("deploy-bot", "operator")
    email = sign_in(client, "admin")
    dash.users.add("viewer@example.com", "a long enough password", "viewer")

    page = client.get("/users")

    assert page.status_code == 200
    users_table, tokens_table = page.text.split("<tbody>")[1:3]
    assert email in users_table and "viewer@example.com" in users_table
    assert "deploy-bot" in tokens_table and "operator" in tokens_table
    assert secret not in page.text
    assert "skyline user add" in page.text and "skyline token add" in page.text
    assert "<form" not in page.text.split('<main class="main"', 1)[1]  # read-only


def test_the_users_page_pages_each_list_separately(client, app, sign_in, engine):
    sign_in(client, "admin")
    now = datetime.now(UTC)
    people = [
        {"email": f"user{n:02d}@example.com", "password_hash": "-", "role": "viewer"}
        for n in range(55)
    ]
    with engine.begin() as connection:  # argon2 for 55 users would take half a minute
        connection.execute(User.__table__.insert(), [{**p, "created_at": now} for p in people])
    app.state.dashboard.tokens.create("only-token", "viewer")

    second = client.get("/users?users_page=2")

    assert "user54@example.com" in second.text and "user00@example.com" not in second.text
    assert "only-token" in second.text
    assert client.get("/users?tokens_page=x").status_code == 400


def test_an_unreadable_audit_detail_is_shown_not_fatal(client, app, sign_in, engine):
    app.state.dashboard.audit.record("ops", "job.retry", "job-1", {"ids": [1]})
    with engine.begin() as connection:
        connection.execute(update(AuditEntry).values(detail="{broken"))
    sign_in(client, "admin")
    page = client.get("/audit")
    assert page.status_code == 200
    assert "{broken" in page.text
