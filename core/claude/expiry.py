"""Expiry: requests pending too long are expired, and their jobs taken off the queues.

A request still pending ``[claude] pending_expiry_s`` after it was submitted (a queue
backed up for a day, a job lost with its Redis) is not wanted any more. The scheduler
marks it expired and removes its job from the Claude queues, so it stops counting in
their depth, on which the auto-balancer scales. A job a worker holds at that moment stays:
it finds its request expired and skips it; so does any job the scan missed while the
queue moved. A removed job of a Skyline batch counts as done there, as it would have had
it run. Two schedulers cannot expire one request twice: the status change is conditional.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.claude import webhooks
from core.claude.job import JOB_NAME, queue_for
from core.claude.services import ClaudeServices
from core.claude.settings import PRIORITIES
from core.payload import Payload, PayloadError, parse, peek


@dataclass(frozen=True)
class Expiry:
    expired: list[str]  # the requests expired
    removed: int  # their jobs taken off the queues


def expire_pending(services: ClaudeServices, now: datetime | None = None) -> Expiry:
    now = now or datetime.now(UTC)
    created_before = now - timedelta(seconds=services.claude.pending_expiry_s)
    expired = services.requests.expired(created_before, now)
    if not expired:
        return Expiry([], 0)
    removed = remove_jobs(services, set(expired))
    for request_id in expired:
        webhooks.request_finished(services, services.requests.get(request_id))
    return Expiry(expired, removed)


def remove_jobs(services: ClaudeServices, request_ids: set[str]) -> int:
    """Take the jobs of these requests off the Claude queues; how many were taken.

    Reads every waiting payload of the three queues, so it runs only when requests expired.
    """
    queue = services.dispatcher.queue()
    signing_keys = services.dispatcher.settings.signing_keys()
    workflows = services.dispatcher.workflows
    removed = 0
    for name in [queue_for(priority) for priority in PRIORITIES]:
        # Found first, removed after: removing shifts the list under a scan.
        found = [raw for raw in queue.waiting(name) if _runs_one_of(raw, request_ids)]
        for raw in found:
            payload = _verified(raw, signing_keys)
            if payload is None or not queue.remove(name, raw):
                continue
            removed += 1
            if payload.body.get("batch"):
                workflows.member_succeeded(payload.body["batch"])
    return removed


def _runs_one_of(raw: str | bytes, request_ids: set[str]) -> bool:
    body = peek(raw)
    args = body.get("args")
    return (
        body.get("job") == JOB_NAME
        and isinstance(args, list)
        and len(args) == 1
        and isinstance(args[0], str)
        and args[0] in request_ids
    )


def _verified(raw: str | bytes, signing_keys: list[str]) -> Payload | None:
    """Only a payload this application signed may move a batch's count."""
    try:
        return parse(raw, signing_keys)
    except PayloadError:
        return None
