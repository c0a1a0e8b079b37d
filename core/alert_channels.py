"""Where alerts go: a signed JSON webhook, a Slack incoming webhook, email over SMTP.

URLs and credentials never reach a log line: a Slack webhook's URL is its secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

from core.settings import AlertSettings, EmailSettings

SIGNATURE_HEADER = "X-Skyline-Signature"
EVENT_HEADER = "X-Skyline-Event"
USER_AGENT = "skyline-alerts"

log = logging.getLogger("skyline.alerts")


class Alert(Protocol):
    @property
    def kind(self) -> str: ...
    def subject(self) -> str: ...
    def summary(self) -> str: ...
    def as_dict(self) -> dict[str, Any]: ...


class Channel(Protocol):
    @property
    def name(self) -> str: ...
    def send(self, alert: Alert) -> None: ...


def signature(body: bytes, secret: str) -> str:
    """What a receiver recomputes over the raw request body to trust it."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_json(url: str, body: bytes, headers: dict[str, str], timeout_s: float) -> None:
    """Raises for anything but a 2xx answer (urllib raises HTTPError itself)."""
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        response.read()


@dataclass(frozen=True)
class WebhookChannel:
    url: str
    secret: str
    timeout_s: float
    name: str = "webhook"

    def send(self, alert: Alert) -> None:
        body = json.dumps(alert.as_dict(), separators=(",", ":")).encode()
        headers = {SIGNATURE_HEADER: signature(body, self.secret), EVENT_HEADER: alert.kind}
        post_json(self.url, body, headers, self.timeout_s)


@dataclass(frozen=True)
class SlackChannel:
    url: str
    timeout_s: float
    name: str = "slack"

    def send(self, alert: Alert) -> None:
        body = json.dumps({"text": alert.summary()}).encode()
        post_json(self.url, body, {}, self.timeout_s)


@dataclass(frozen=True)
class EmailChannel:
    settings: EmailSettings
    name: str = "email"

    def send(self, alert: Alert) -> None:
        smtp = self.settings
        message = EmailMessage()
        message["Subject"] = alert.subject()
        message["From"] = smtp.sender
        message["To"] = ", ".join(smtp.to)
        details = "\n".join(f"{key}: {value}" for key, value in alert.as_dict().items())
        message.set_content(f"{alert.summary()}\n\n{details}\n")
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
            if smtp.starttls:
                client.starttls(context=ssl.create_default_context())
            if smtp.user:
                password = smtp.password.get_secret_value() if smtp.password else ""
                client.login(smtp.user, password)
            client.send_message(message)


def configured_channels(alerts: AlertSettings) -> list[Channel]:
    channels: list[Channel] = []
    if alerts.webhook_url and alerts.webhook_secret:
        secret = alerts.webhook_secret.get_secret_value()
        channels.append(WebhookChannel(alerts.webhook_url, secret, alerts.timeout))
    if alerts.slack_webhook_url:
        channels.append(SlackChannel(alerts.slack_webhook_url.get_secret_value(), alerts.timeout))
    if alerts.email:
        channels.append(EmailChannel(alerts.email))
    return channels


def deliver(alert: Alert, channels: list[Channel]) -> list[str]:
    """Send to every channel; one that fails is logged and does not stop the others.

    Returns the names of the channels that took the alert.
    """
    delivered = []
    for channel in channels:
        try:
            channel.send(alert)
        except (OSError, smtplib.SMTPException, ValueError) as exc:
            log.warning("%s alert not sent by %s: %s", alert.kind, channel.name, _reason(exc))
        else:
            delivered.append(channel.name)
    return delivered


def _reason(exc: Exception) -> str:
    """The error without anything that could carry a URL (urllib's ValueError quotes it)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    if isinstance(exc, ValueError):
        return "the URL is not valid"
    return f"{type(exc).__name__}: {exc}"
