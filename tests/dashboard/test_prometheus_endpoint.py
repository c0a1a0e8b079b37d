"""``/metrics``: Prometheus's token, or a signed-in user, and text its own parser reads."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

from core.dashboard_settings import DashboardSettings
from core.runtime import Runtime
from dashboard.app import create_app
from tests.jobs import noop

METRICS_TOKEN = "scrape-me-0123456789"
SCRAPER = {"Authorization": f"Bearer {METRICS_TOKEN}"}


@pytest.fixture
def app(runtime: Runtime) -> Starlette:
    """The dashboard with ``[dashboard] metrics_token`` set."""
    dashboard = DashboardSettings(metrics_token=METRICS_TOKEN)
    runtime.settings = runtime.settings.model_copy(update={"dashboard": dashboard})
    return create_app(runtime)


def queue_sizes(text: str, queue: str) -> dict[str, float]:
    return {
        sample.labels["state"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "skyline_queue_jobs" and sample.labels["queue"] == queue
    }


def test_the_metrics_token_scrapes_text_that_prometheus_parses(client):
    noop.options(queue="reports").dispatch(1)
    noop.options(queue="reports").dispatch(2)
    noop.options(queue="reports", delay=60).dispatch(3)
    response = client.get("/metrics", headers=SCRAPER)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    assert queue_sizes(response.text, "reports") == {"ready": 2, "delayed": 1, "reserved": 0}


def test_a_signed_in_user_or_an_api_token_may_scrape_too(app, client, sign_in):
    noop.options(queue="reports").dispatch(1)
    token = app.state.dashboard.tokens.create("grafana", "viewer")
    by_token = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert by_token.status_code == 200
    assert queue_sizes(by_token.text, "reports")["ready"] == 1
    sign_in(client, "viewer")
    assert queue_sizes(client.get("/metrics").text, "reports")["ready"] == 1


def test_the_metrics_token_opens_nothing_but_metrics(client):
    assert client.get("/api/overview", headers=SCRAPER).status_code == 401
    assert client.get("/", headers=SCRAPER).status_code == 303


def test_signed_out_or_a_wrong_token_gets_401(client):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "error" in response.json()
    wrong = client.get("/metrics", headers={"Authorization": "Bearer scrape-me-wrong"})
    assert wrong.status_code == 401
