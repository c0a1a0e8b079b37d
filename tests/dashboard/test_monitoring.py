"""Monitored tags: added and removed from the page and the API, with the jobs they keep."""

from __future__ import annotations

import re

import pytest

from tests import jobs
from tests.dashboard.conftest import csrf_of
from tests.dashboard.test_failed_jobs import audit
from tests.dashboard.test_jobs import listed, work


@pytest.fixture
def operator(client, sign_in):
    sign_in(client, "operator")
    return client


@pytest.fixture
def records(app):
    return app.state.dashboard.records


def add(client, tag: str):
    return client.post(
        "/monitoring", data={"tag": tag, "csrf_token": csrf_of(client, "/monitoring")}
    )


def test_an_operator_monitors_a_tag_and_sees_its_jobs(app, runtime, operator, records):
    response = add(operator, "  Customer:7  ")

    assert response.status_code == 303 and response.headers["location"] == "/monitoring"
    assert records.monitored() == {"Customer:7": 0}
    watched = jobs.noop.options(tags=["Customer:7"]).dispatch(1)
    jobs.noop.options(tags=["Customer:8"]).dispatch(2)
    work(runtime)

    page = operator.get("/monitoring")
    assert "Monitoring Customer:7" in page.text  # the flash
    assert re.search(
        r'href="/monitoring/Customer%3A7">Customer:7</a></td>\s*'
        r'<td class="num"><span title="1">1</span>',
        page.text,
    )
    assert listed(operator.get("/monitoring/Customer:7").text) == [watched]
    assert [(action, target) for _, action, target, _ in audit(app)] == [
        ("monitoring.add", "Customer:7")
    ]


def test_an_operator_stops_monitoring_a_tag(app, operator, records):
    records.monitor("emails/daily")

    response = operator.post(
        "/monitoring/emails/daily/remove", data={"csrf_token": csrf_of(operator, "/monitoring")}
    )

    assert response.status_code == 303
    assert records.monitored() == {}
    assert "Stopped monitoring emails/daily" in operator.get("/monitoring").text
    assert [(action, target) for _, action, target, _ in audit(app)] == [
        ("monitoring.remove", "emails/daily")
    ]


@pytest.mark.parametrize(
    ("tag", "message"),
    [
        ("   ", "Enter a tag to monitor"),
        ("x" * 256, "longer than 255 characters"),
        ("vip\nnow", "must not contain control characters"),
    ],
)
def test_a_bad_tag_is_refused_with_the_reason(app, operator, records, tag, message):
    response = add(operator, tag)

    assert response.status_code == 400
    assert message in response.text and 'class="error-box"' in response.text
    assert records.monitored() == {}
    assert audit(app) == []


def test_a_tag_that_is_not_monitored_is_a_404(operator):
    response = operator.get("/monitoring/nobody")
    assert response.status_code == 404
    assert "is not monitored" in response.text
    assert operator.get("/api/monitoring/nobody").status_code == 404


def test_the_monitoring_page_says_what_to_do_when_empty(operator):
    page = operator.get("/monitoring")
    assert "No monitored tags" in page.text and "Customer:42" in page.text


def test_a_tag_page_pages_by_cursor(runtime, operator, records):
    records.monitor("bulk")
    ids = [jobs.noop.options(tags=["bulk"]).dispatch(n) for n in range(3)]

    first = operator.get("/monitoring/bulk?per_page=2")
    older = re.search(r'href="([^"]+)" rel="next"', first.text).group(1).replace("&amp;", "&")
    second = operator.get(older)

    assert listed(first.text) == [ids[2], ids[1]]
    assert listed(second.text) == [ids[0]]
    assert operator.get("/monitoring/bulk?before=soon").status_code == 400


def test_the_job_page_links_monitored_tags(runtime, operator, records):
    records.monitor("vip")
    job_id = jobs.noop.options(tags=["vip", "plain"]).dispatch(1)

    page = operator.get(f"/job/{job_id}")

    assert 'href="/monitoring/vip"' in page.text
    assert 'href="/monitoring/plain"' not in page.text and ">plain<" in page.text


# --- the API ----------------------------------------------------------------------------------


@pytest.fixture
def headers(app):
    token = app.state.dashboard.tokens.create("ops-script", "operator")
    return {"Authorization": f"Bearer {token}"}


def test_the_api_lists_adds_and_removes_tags(app, client, headers, records):
    created = client.post("/api/monitoring", json={"tag": "vip"}, headers=headers)
    again = client.post("/api/monitoring", json={"tag": "vip"}, headers=headers)
    job_id = jobs.noop.options(tags=["vip"]).dispatch(1)

    assert (created.status_code, created.json()) == (201, {"tag": "vip", "added": True})
    assert (again.status_code, again.json()["added"]) == (200, False)
    assert client.get("/api/monitoring", headers=headers).json() == {
        "data": [{"tag": "vip", "jobs": 1}]
    }
    jobs_page = client.get("/api/monitoring/vip", headers=headers).json()
    assert [row["id"] for row in jobs_page["data"]] == [job_id]
    assert jobs_page["page"] == {"next_before": None}

    removed = client.delete("/api/monitoring/vip", headers=headers)
    assert removed.json() == {"removed": "vip"}
    assert records.monitored() == {}
    assert client.delete("/api/monitoring/vip", headers=headers).status_code == 404
    assert [(action, target) for _, action, target, _ in audit(app)] == [
        ("monitoring.add", "vip"),
        ("monitoring.remove", "vip"),
    ]


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{oops", 400), (b"[]", 422), (b'{"tag": ""}', 422), (b'{"tag": 5}', 422)],
)
def test_the_api_refuses_a_bad_tag(client, headers, records, body, status):
    response = client.post(
        "/api/monitoring", content=body, headers=headers | {"Content-Type": "application/json"}
    )
    assert response.status_code == status
    assert response.json()["error"]
    assert records.monitored() == {}
