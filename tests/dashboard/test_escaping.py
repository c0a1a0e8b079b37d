"""Job data is never markup: a job whose name, tags, arguments and exception hold HTML
shows that HTML as text on every page that lists or shows it."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from core import job
from tests.dashboard.test_jobs import work

SCRIPT = "<script>alert(1)</script>"
IMAGE = '"><img src=x onerror=alert(1)>'
HOSTILE = SCRIPT + IMAGE
SCRIPT_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
IMAGE_ESCAPED = "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"


@job(name=f"tests.{HOSTILE}.fails", tries=1)
def hostile_fails(text: str) -> None:
    raise ValueError(text)


@job(name=f"tests.{HOSTILE}.works")
def hostile_works(text: str) -> None:
    """Completes."""


def assert_escaped(text: str) -> None:
    assert SCRIPT not in text and IMAGE not in text and "<img" not in text
    assert SCRIPT_ESCAPED in text and IMAGE_ESCAPED in text


@pytest.fixture
def hostile(runtime, app, client, sign_in) -> dict[str, str]:
    """A failed, a completed and a pending hostile job, and a monitored hostile tag."""
    sign_in(client, "operator")
    app.state.dashboard.records.monitor(HOSTILE)
    tagged = hostile_works.options(tags=[HOSTILE])
    ids = {
        "failed": hostile_fails.options(tags=[HOSTILE]).dispatch(HOSTILE),
        "completed": tagged.dispatch(HOSTILE),
    }
    work(runtime)
    ids["pending"] = tagged.dispatch(HOSTILE)
    return ids


@pytest.mark.parametrize("status", ["pending", "completed", "failed"])
def test_the_lists_escape_job_data(client, hostile, status):
    page = client.get(f"/jobs/{status}")

    assert page.status_code == 200
    assert hostile[status] in page.text
    assert_escaped(page.text)


@pytest.mark.parametrize("status", ["pending", "completed", "failed"])
def test_the_job_page_escapes_job_data(client, hostile, status):
    page = client.get(f"/job/{hostile[status]}")

    assert page.status_code == 200
    assert_escaped(page.text)
    if status == "failed":
        assert f"ValueError: {SCRIPT_ESCAPED}{IMAGE_ESCAPED}" in page.text
        assert "Traceback (most recent call last)" in page.text


def test_a_filter_value_is_echoed_escaped(client, hostile):
    page = client.get("/jobs/completed", params={"job": f"tests.{HOSTILE}.works"})

    assert hostile["completed"] in page.text  # the filter matched
    assert_escaped(page.text)


def test_the_monitoring_pages_escape_the_tag(client, hostile):
    listing = client.get("/monitoring")
    jobs_of_tag = client.get("/monitoring/" + quote(HOSTILE, safe=""))

    assert_escaped(listing.text)
    assert jobs_of_tag.status_code == 200
    assert hostile["completed"] in jobs_of_tag.text
    assert_escaped(jobs_of_tag.text)
