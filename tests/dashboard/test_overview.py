"""The overview page, its live partial, and the master and supervisor controls."""

from __future__ import annotations

import time

import pytest

from core.control import ControlRepository
from core.keys import Keys
from tests.dashboard.conftest import csrf_of
from tests.jobs import noop

SUPERVISOR_DETAILS = {
    "queues": ["emails", "default"],
    "balance": "auto",
    "pools": {"emails": {"processes": 3, "busy": 2}, "default": {"processes": 1, "busy": 0}},
    "processes": 4,
    "options": {"max_processes": 10, "min_processes": 1},
}


@pytest.fixture
def control(redis_client) -> ControlRepository:
    return ControlRepository(redis_client, Keys())


@pytest.fixture
def running_master(control) -> str:
    control.beat("master", "web-1-ab12", "running", {"host": "web-1", "processes": 4})
    control.beat("supervisor", "web-1-ab12:emails", "running", SUPERVISOR_DETAILS)
    return "web-1-ab12"


def test_the_overview_says_inactive_and_what_to_do_when_nothing_runs(client, sign_in):
    sign_in(client, "viewer")
    page = client.get("/").text
    assert "Inactive" in page
    assert "No master is running" in page
    assert "skyline start" in page


def test_the_overview_shows_masters_supervisors_and_the_workload(
    client, sign_in, running_master, runtime
):
    for n in range(3):
        noop.options(queue="emails").dispatch(n)
    sign_in(client, "viewer")
    page = client.get("/").text
    assert "Active" in page
    assert running_master in page
    assert "web-1-ab12:emails" in page
    workload = page[page.index("Current workload") : page.index("Masters")]
    emails_row = workload[workload.index(">emails<") :].split("</tr>")[0]
    cells = [c.split(">")[-1] for c in emails_row.split("</span>")[:3]]
    assert cells[:2] == ["3", "3"]  # 3 pending jobs, 3 processes on the emails pool


def test_the_live_partial_is_the_refreshing_part_alone(client, sign_in, running_master):
    sign_in(client, "viewer")
    partial = client.get("/partials/overview")
    assert partial.status_code == 200
    assert partial.text.lstrip().startswith('<div id="overview-live"')
    assert 'hx-trigger="every 3.0s"' in partial.text
    assert "<html" not in partial.text


def test_an_operator_pauses_and_continues_a_master_and_the_audit_log_says_so(
    client, sign_in, running_master, control, app
):
    sign_in(client, "operator")
    token = csrf_of(client, "/")
    response = client.post(f"/masters/{running_master}/pause", data={"csrf_token": token})
    assert response.status_code == 303
    assert control.receive(running_master) == [{"command": "pause"}]
    assert f"Paused master {running_master}." in client.get("/").text
    client.post(f"/supervisors/{running_master}:emails/continue", data={"csrf_token": token})
    assert control.receive(f"{running_master}:emails") == [{"command": "continue"}]
    entries, total = app.state.dashboard.audit.page()
    assert total == 2
    assert [(e.action, e.target) for e in entries] == [
        ("supervisor.continue", f"{running_master}:emails"),
        ("master.pause", running_master),
    ]
    assert entries[0].actor == "operator@example.com (session)"


def test_terminate_needs_an_admin(client, sign_in, running_master, control):
    sign_in(client, "operator")
    token = csrf_of(client, "/")
    assert "Terminate" not in client.get("/").text
    refused = client.post(f"/masters/{running_master}/terminate", data={"csrf_token": token})
    assert refused.status_code == 403
    assert control.receive(running_master) == []


def test_a_viewer_sees_no_controls_and_cannot_post_them(client, sign_in, running_master, control):
    sign_in(client, "viewer")
    page = client.get("/").text
    assert ">Pause<" not in page and ">Terminate<" not in page
    token = csrf_of(client, "/")
    assert (
        client.post(f"/masters/{running_master}/pause", data={"csrf_token": token}).status_code
        == 403
    )
    assert control.receive(running_master) == []


def test_unknown_masters_and_commands_get_a_clear_404(client, sign_in, running_master):
    sign_in(client, "admin")
    token = csrf_of(client, "/")
    unknown = client.post("/masters/nobody/pause", data={"csrf_token": token})
    assert unknown.status_code == 404
    assert "No master named" in unknown.text
    bad = client.post(f"/masters/{running_master}/explode", data={"csrf_token": token})
    assert bad.status_code == 404
    assert "no master command" in bad.text


def test_an_unreadable_heartbeat_is_skipped_not_fatal(client, sign_in, running_master, app):
    dash = app.state.dashboard
    dash.client.zadd(dash.keys.masters(), {"garbled": time.time()})
    dash.client.set(dash.keys.master("garbled"), b"{not json")
    sign_in(client, "viewer")
    page = client.get("/")
    assert page.status_code == 200
    assert running_master in page.text
    assert "garbled" not in page.text
