"""Long-wait alerts against real receivers on loopback: a webhook, Slack and an SMTP sink."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes

import pytest
import redis

from core.alert_channels import SIGNATURE_HEADER, configured_channels
from core.alerts import LongWait, WaitAlerts
from core.cooldowns import Alerting, Cooldowns
from core.keys import Keys
from core.queue import RedisQueue
from core.runtime import Runtime
from core.scheduled import ScheduledTasks
from core.scheduler import start_scheduler, stop_scheduler
from core.settings import AlertSettings, EmailSettings
from core.snapshot_taker import SnapshotTaker
from core.snapshots import SnapshotRepository
from core.waits import wait_age_s
from tests.conftest import wait_until
from tests.jobs import noop
from tests.receivers import HttpReceiver, SmtpSink, free_port

WEBHOOK_SECRET = "webhook-secret-0123456789"
SLACK_PATH = "/services/T0000/B0000/slack-token-123"
SMTP_USER, SMTP_PASSWORD = "alerts", "smtp-password-456"
COOLDOWN_S = 300
THRESHOLD_S = 60
MS = timedelta(milliseconds=1)


@pytest.fixture
def webhook() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def slack() -> Iterator[HttpReceiver]:
    receiver = HttpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    sink = SmtpSink(SMTP_USER, SMTP_PASSWORD)
    yield sink
    sink.close()


@pytest.fixture
def alert_settings(webhook, slack, smtp) -> AlertSettings:
    email = EmailSettings(
        host="127.0.0.1",
        port=smtp.port,
        sender="skyline@example.test",
        to=["ops@example.test", "oncall@example.test"],
        user=SMTP_USER,
        password=SMTP_PASSWORD,
    )
    return AlertSettings(
        waits={"redis:default": THRESHOLD_S, "redis:emails": 30},
        cooldown=COOLDOWN_S,
        webhook_url=webhook.url("/hooks/skyline"),
        webhook_secret=WEBHOOK_SECRET,
        slack_webhook_url=slack.url(SLACK_PATH),
        email=email,
        timeout=5,
    )


def monitor(runtime: Runtime, alerts: AlertSettings, client: redis.Redis | None = None):
    client = client or runtime.queue().client
    keys = runtime.dispatcher.keys
    alerting = Alerting(Cooldowns(client), keys, alerts, configured_channels(alerts), "production")
    return WaitAlerts(lambda _connection: RedisQueue(client, keys), alerting)


def push(runtime: Runtime, queue: str = "default") -> datetime:
    """Push a job; returns when it became available, as its payload says."""
    noop.options(queue=queue).dispatch(1)
    [(_, head)] = runtime.queue().ready_heads([queue])
    return datetime.fromtimestamp(json.loads(head)["available_at"] / 1000, UTC)


def test_a_long_wait_reaches_every_channel(runtime, alert_settings, webhook, slack, smtp):
    available = push(runtime)
    now = available + timedelta(seconds=THRESHOLD_S) + MS
    [alert] = monitor(runtime, alert_settings).check(now)
    assert (alert.connection, alert.queue, alert.threshold_s) == ("redis", "default", 60)
    assert alert.wait_s == pytest.approx(60.001)

    [hook] = webhook.requests
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), hook.body, hashlib.sha256).hexdigest()
    assert hook.path == "/hooks/skyline"
    assert hook.headers[SIGNATURE_HEADER] == expected
    assert hook.headers["X-Skyline-Event"] == "long_wait"
    assert hook.headers["Content-Type"] == "application/json"
    assert json.loads(hook.body) == {
        "event": "long_wait",
        "env": "production",
        "connection": "redis",
        "queue": "default",
        "wait_s": 60.001,
        "threshold_s": 60,
        "at": now.isoformat(),
    }

    [posted] = slack.requests
    assert posted.path == SLACK_PATH
    text = json.loads(posted.body)["text"]
    assert "redis:default" in text and "60 s" in text and "production" in text

    [mail] = smtp.messages
    assert smtp.logins == [(SMTP_USER, SMTP_PASSWORD)]
    assert (mail.mail_from, mail.rcpt_tos) == (
        "skyline@example.test",
        ["ops@example.test", "oncall@example.test"],
    )
    message = message_from_bytes(mail.original_content)
    assert message["Subject"] == "[Skyline production] Long wait on redis:default"
    assert "queue: default" in message.get_payload()


def test_an_alert_fires_once_per_cooldown(runtime, alert_settings, webhook):
    alerts = monitor(runtime, alert_settings)
    first = push(runtime) + timedelta(seconds=THRESHOLD_S + 1)
    cooldown = timedelta(seconds=COOLDOWN_S)
    assert len(alerts.check(first)) == 1
    assert alerts.check(first + timedelta(seconds=1)) == []
    assert alerts.check(first + cooldown - MS) == []
    [again] = alerts.check(first + cooldown)
    assert again.wait_s == pytest.approx(THRESHOLD_S + 1 + COOLDOWN_S)
    assert alerts.check(first + cooldown + MS) == []
    assert [json.loads(r.body)["queue"] for r in webhook.requests] == ["default", "default"]


def test_no_alert_at_or_under_the_threshold(runtime, alert_settings, webhook, slack, smtp):
    alerts = monitor(runtime, alert_settings)
    available = push(runtime)
    assert alerts.check(available + timedelta(seconds=THRESHOLD_S)) == []
    assert alerts.check(available + timedelta(seconds=1)) == []
    assert (webhook.requests, slack.requests, smtp.messages) == ([], [], [])


def test_each_queue_has_its_threshold_and_its_own_cooldown(runtime, alert_settings, webhook):
    alerts = monitor(runtime, alert_settings)
    available = push(runtime, "emails")
    push(runtime, "default")
    now = available + timedelta(seconds=45)  # past emails' 30 s, under default's 60 s
    assert [(a.queue, a.threshold_s) for a in alerts.check(now)] == [("emails", 30)]
    later = now + timedelta(seconds=30)
    assert [a.queue for a in alerts.check(later)] == ["default"]
    assert [json.loads(r.body)["queue"] for r in webhook.requests] == ["emails", "default"]


def test_racing_schedulers_send_one_alert(runtime, alert_settings, webhook, redis_url):
    now = push(runtime) + timedelta(seconds=THRESHOLD_S + 5)
    start = threading.Barrier(4)
    sent: list[LongWait] = []

    def scheduler() -> None:
        alerts = monitor(runtime, alert_settings, redis.Redis.from_url(redis_url))
        start.wait()
        sent.extend(alerts.check(now))

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert [alert.queue for alert in sent] == ["default"]
    assert len(webhook.requests) == 1


def test_a_failing_channel_does_not_stop_the_others(
    runtime, alert_settings, webhook, slack, smtp, caplog
):
    webhook.status = 500
    now = push(runtime) + timedelta(seconds=THRESHOLD_S + 1)
    with caplog.at_level(logging.WARNING, logger="skyline.alerts"):
        assert len(monitor(runtime, alert_settings).check(now)) == 1
    assert (len(webhook.requests), len(slack.requests), len(smtp.messages)) == (1, 1, 1)
    assert "not sent by webhook: HTTP 500" in caplog.text
    for secret in (WEBHOOK_SECRET, "slack-token", SMTP_PASSWORD, "127.0.0.1:"):
        assert secret not in caplog.text


def test_when_no_channel_takes_it_the_next_check_sends_again(runtime, webhook):
    only_webhook = AlertSettings(
        waits={"redis:default": THRESHOLD_S},
        webhook_url=webhook.url("/hook"),
        webhook_secret=WEBHOOK_SECRET,
    )
    alerts = monitor(runtime, only_webhook)
    now = push(runtime) + timedelta(seconds=THRESHOLD_S + 1)
    webhook.status = 503
    assert alerts.check(now) == []
    webhook.status = 200
    assert len(alerts.check(now + timedelta(seconds=1))) == 1
    assert len(webhook.requests) == 2


def test_a_refused_connection_is_a_failed_channel(runtime):
    closed = f"http://127.0.0.1:{free_port()}/hook"
    settings = AlertSettings(
        waits={"redis:default": 1}, webhook_url=closed, webhook_secret=WEBHOOK_SECRET, timeout=2
    )
    now = push(runtime) + timedelta(seconds=2)
    assert monitor(runtime, settings).check(now) == []


def test_the_scheduler_checks_waits_at_start(runtime, settings, alert_settings, webhook, engine):
    push(runtime)
    no_email = alert_settings.model_copy(
        update={"waits": {"redis:default": 0.001}, "email": None, "slack_webhook_url": None}
    )
    configured = settings.model_copy(update={"alerts": no_email})
    scheduled_runtime = Runtime(configured)
    client, keys = runtime.queue().client, Keys(configured.prefix)
    taker = SnapshotTaker(client, keys, NoCounters(), SnapshotRepository(engine), 300)
    tasks = ScheduledTasks(configured, taker, monitor(scheduled_runtime, no_email))
    scheduler = start_scheduler(scheduled_runtime, tasks)
    try:
        assert "alerts" in {job.id for job in scheduler.get_jobs()}
        wait_until(lambda: webhook.requests, message="the scheduler sent no alert")
    finally:
        stop_scheduler(scheduler)
    assert json.loads(webhook.requests[0].body)["queue"] == "default"


class NoCounters:
    def take_interval(self) -> list:
        return []


@pytest.mark.parametrize(
    ("head", "age_s"),
    [
        (None, 0.0),
        (b"", 0.0),
        (b"not json", 0.0),
        (b"[1, 2]", 0.0),
        (b'{"available_at": 0}', 0.0),
        (b'{"available_at": "soon"}', 0.0),
        (b'{"available_at": 1000}', 2.5),
        (b'{"available_at": 9000}', 0.0),  # not yet available: no wait
    ],
)
def test_wait_age_of_a_queue_head(head, age_s):
    assert wait_age_s(head, now_ms=3500) == age_s
