"""Webhooks: a signed JSON event when a request or a whole batch ends, sent by a job.

The event goes out as a job of its own on the request's priority queue, so a receiver
that is down gets the Claude retry policy (``tries``, ``backoff``) without holding up the
request. The body is signed like the alert webhooks: ``X-Skyline-Signature: sha256=<hex>``,
an HMAC-SHA256 of the raw body with ``[claude] webhook_secret``. The URL is checked again
when it is sent (the host allow-list may have changed since), and redirects are not
followed, since one could lead past that list.

Requests notify when they complete, fail or expire; a cancelled one does not (whoever
cancelled it knows). A record only moves to those statuses once, so the caller that moved
it (``request_finished(services, moved)``) queues exactly one event.
"""

from __future__ import annotations

import json
import logging
import urllib.request
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from core.alert_channels import EVENT_HEADER, SIGNATURE_HEADER, _reason, signature
from core.claude.records import ClaudeRequestRecord, Status
from core.claude.services import ClaudeServices, default_services
from core.claude.settings import ClaudeSettings
from core.context import current_job
from core.job import FunctionJob, PendingOptions, PreparedJob, job

REQUEST_JOB = "skyline.claude.webhook"
BATCH_JOB = "skyline.claude.batch_webhook"
NOTIFIED = (Status.COMPLETED, Status.FAILED, Status.EXPIRED)
TIMEOUT_S = 10.0  # one POST
JOB_TIMEOUT_S = 30.0
DELIVERY_HEADER = "X-Skyline-Delivery"  # the job's id: the same on every retry of one event
USER_AGENT = "skyline-claude-webhooks"

log = logging.getLogger("skyline.claude.webhooks")


class WebhookRefused(ValueError):
    """The event cannot be sent at all (no secret, a URL no longer allowed): no retry."""


class WebhookNotDelivered(OSError):
    """The receiver did not take the event; the job tries again."""


def request_finished(services: ClaudeServices, moved: ClaudeRequestRecord | None) -> None:
    """Queue the event of a request that just ended; ``moved`` is what the status change
    returned (None: this caller did not change it, so another notifies, or nobody)."""
    if moved is None or not moved.webhook_url or moved.status not in NOTIFIED:
        return
    event_job = _options(deliver_request_event, services.claude, moved.priority)
    services.dispatcher.dispatch([event_job.prepare(moved.id)])


def batch_callback(settings: ClaudeSettings, priority: str, webhook_url: str) -> PreparedJob:
    """The job a batch runs once it has finished (it is given ``batch_id=``)."""
    return _options(deliver_batch_event, settings, priority).prepare(webhook_url=webhook_url)


def request_event(record: ClaudeRequestRecord) -> dict[str, Any]:
    return {
        "type": f"claude.request.{record.status.value}",
        "request_id": record.id,
        "status": record.status.value,
        "model": record.model,
        "response": record.response_text,
        "stop_reason": record.stop_reason,
        "usage": asdict(record.usage),
        "cost_usd": record.cost_usd,
        "cached": record.cached,
        "error": record.error,
        "attempts": record.attempts,
        "batch_id": record.batch_id,
        "timestamp": _iso(record.finished_at or datetime.now(UTC)),
    }


@job(name=REQUEST_JOB)
def deliver_request_event(request_id: str) -> None:
    services = default_services()
    record = services.requests.get(request_id)
    if record is None or not record.webhook_url:
        return  # deleted since
    _send(services.claude, record.webhook_url, request_event(record))


@job(name=BATCH_JOB)
def deliver_batch_event(webhook_url: str, batch_id: str) -> None:
    from core.claude.batches import batch_progress  # batches queues this job

    services = default_services()
    progress = batch_progress(batch_id, services=services)
    if progress is None:
        return  # deleted since
    event = {
        "type": "claude.batch.finished",
        "batch_id": batch_id,
        **progress,
        "timestamp": _iso(datetime.now(UTC)),
    }
    _send(services.claude, webhook_url, event)


def _send(settings: ClaudeSettings, url: str, event: dict[str, Any]) -> None:
    """POST the signed event from inside its job: a refusal fails the job at once, an
    answer other than 2xx (or none) raises for a retry."""
    try:
        secret = _checked(settings, url)
    except WebhookRefused as exc:
        log.warning("%s not sent: %s", event["type"], exc)
        current_job().fail(exc)
        return
    body = json.dumps(event, separators=(",", ":")).encode()
    headers = {
        SIGNATURE_HEADER: signature(body, secret),
        EVENT_HEADER: event["type"],
        DELIVERY_HEADER: current_job().job_id,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
    }
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=TIMEOUT_S) as response:
            response.read()
    except (OSError, ValueError) as exc:
        raise WebhookNotDelivered(f"{event['type']} not delivered: {_reason(exc)}") from None


def _checked(settings: ClaudeSettings, url: str) -> str:
    """The signing secret, once the URL is still one events may go to."""
    from core.claude.submission import _webhook_problem  # it imports the job, which imports us

    problem = _webhook_problem(url, settings.webhook_hosts)
    if problem:
        raise WebhookRefused(f"the webhook URL {problem}")
    if settings.webhook_secret is None:
        raise WebhookRefused(
            "no secret to sign it with: set [claude] webhook_secret "
            "(or SKYLINE_CLAUDE_WEBHOOK_SECRET)"
        )
    return settings.webhook_secret.get_secret_value()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx answer fails the delivery (urllib raises it as an HTTPError)."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def _options(target: FunctionJob, settings: ClaudeSettings, priority: str) -> PendingOptions:
    from core.claude.job import queue_for  # the job module imports this one

    return target.options(
        queue=queue_for(priority),
        tries=settings.tries,
        backoff=settings.backoff,
        timeout=JOB_TIMEOUT_S,
    )


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
