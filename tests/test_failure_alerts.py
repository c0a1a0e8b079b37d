"""Failed-job alerts from the durable failed store, to a real webhook receiver on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from core.alert_channels import configured_channels
from core.cooldowns import Alerting, Cooldowns
from core.failed import FailedJobRepository
from core.failure_alerts import FailureAlerts
from core.keys import Keys
from core.settings import AlertSettings
from tests.receivers import HttpReceiver

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
COOLDOWN = timedelta(seconds=300)
SECRET = "webhook-secret-0123456789"


@pytest.fixture
def webhook() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def failed(engine) -> FailedJobRepository:
    return FailedJobRepository(engine)


@pytest.fixture
def alerts(failed, redis_client, webhook) -> FailureAlerts:
    settings = AlertSettings(
        failed_jobs=True,
        cooldown=int(COOLDOWN.total_seconds()),
        check_interval=60,
        webhook_url=webhook.url("/hook"),
        webhook_secret=SECRET,
    )
    channels = configured_channels(settings)
    return FailureAlerts(
        failed, Alerting(Cooldowns(redis_client), Keys(), settings, channels, "staging")
    )


def fail(failed: FailedJobRepository, queue: str, at: datetime, message: str = "boom") -> str:
    uuid = str(uuid4())
    failed.record(
        uuid=uuid,
        connection="redis",
        queue=queue,
        job_name=f"app.jobs.{queue}_job",
        payload="{}",
        exception_class="ValueError",
        message=message,
        traceback="Traceback ...",
        failed_at=at,
    )
    return uuid


def sent(webhook: HttpReceiver) -> list[dict]:
    return [json.loads(request.body) for request in webhook.requests]


def test_failures_within_the_cooldown_alert_once_per_queue(alerts, failed, webhook):
    fail(failed, "emails", NOW - timedelta(seconds=10))
    newest = fail(failed, "emails", NOW - timedelta(seconds=5), message="SMTP down")
    fail(failed, "default", NOW - COOLDOWN - timedelta(seconds=1))  # before the first window
    [alert] = alerts.check(NOW)
    assert (alert.queue, alert.count, alert.since) == ("emails", 2, NOW - COOLDOWN)
    [body] = sent(webhook)
    assert body["event"] == "job_failed" and body["count"] == 2
    assert body["latest"]["id"] == newest
    assert body["latest"]["message"] == "SMTP down"
    assert webhook.requests[0].headers["X-Skyline-Event"] == "job_failed"
    assert "2 jobs failed on redis:emails" in alert.summary()


def test_the_next_alert_counts_from_the_previous_one(alerts, failed, webhook):
    fail(failed, "emails", NOW - timedelta(seconds=1))
    assert len(alerts.check(NOW)) == 1
    fail(failed, "emails", NOW + timedelta(seconds=10))
    fail(failed, "emails", NOW + timedelta(seconds=20))
    assert alerts.check(NOW + timedelta(seconds=60)) == []
    assert alerts.check(NOW + COOLDOWN - timedelta(milliseconds=1)) == []
    [again] = alerts.check(NOW + COOLDOWN)
    assert (again.count, again.since) == (2, NOW)
    assert [body["count"] for body in sent(webhook)] == [1, 2]


def test_a_failure_just_after_an_alert_is_not_lost(alerts, failed, webhook):
    fail(failed, "emails", NOW - timedelta(seconds=1))
    alerts.check(NOW)
    fail(failed, "emails", NOW + timedelta(seconds=1))
    late_check = NOW + COOLDOWN + timedelta(seconds=59)  # the first check after the cool-down
    [again] = alerts.check(late_check)
    assert again.count == 1


def test_no_failures_no_alert(alerts, webhook):
    assert alerts.check(NOW) == []
    assert webhook.requests == []


def test_an_undelivered_alert_is_tried_again_from_the_same_start(alerts, failed, webhook):
    fail(failed, "emails", NOW - timedelta(seconds=1))
    alerts.check(NOW)
    fail(failed, "emails", NOW + COOLDOWN - timedelta(seconds=1))
    webhook.status = 500
    assert alerts.check(NOW + COOLDOWN) == []
    webhook.status = 200
    [again] = alerts.check(NOW + COOLDOWN + timedelta(seconds=60))
    assert (again.count, again.since) == (1, NOW)
