"""Expiry: requests pending too long are expired, and their jobs taken off the queues.

A request still pending ``[claude] pending_expiry_s`` after it was submitted (a queue
backed up for a day, a job lost with its Redis) is not wanted any more. The scheduler
marks it expired and removes its job from the Claude queues, so it stops counting in
their depth, on which the auto-balancer scales. A job a worker holds at that moment stays:
it finds its request expired and skips it; so does any job the scan missed while the
queue moved. A removed job of a Skyline batch counts as done there, as it would have had
it run. A removed job's record (the dashboard's job lists) reads failed, saying why, so
it leaves the Pending jobs list at once rather than when its record expires. Two
schedulers cannot expire one request twice: the status change is conditional.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from core.claude import webhooks
from core.claude.job import JOB_NAME, queue_for
from core.claude.services import ClaudeServices
from core.claude.settings import PRIORITIES
from core.payload import Payload, PayloadError, now_ms, parse, peek
from core.pipelines import execute

REMOVED = (
    "ClaudeRequestExpired: taken off the queue without running: its Claude request was"
    " still pending after [claude] pending_expiry_s ({expiry_s} s), so it was expired"
)


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
    removed: list[Payload] = []
    for name in [queue_for(priority) for priority in PRIORITIES]:
        # Found first, removed after: removing shifts the list under a scan.
        found = [raw for raw in queue.waiting(name) if _runs_one_of(raw, request_ids)]
        for raw in found:
            payload = _verified(raw, signing_keys)
            if payload is None or not queue.remove(name, raw):
                continue
            removed.append(payload)
            if payload.body.get("batch"):
                workflows.member_succeeded(payload.body["batch"])
    _record_removed(services, removed)
    return len(removed)


def _record_removed(services: ClaudeServices, removed: list[Payload]) -> None:
    """End the removed jobs' records as failed, with the reason as their exception, in one
    round trip. Not counted in the failure metrics nor stored as failed jobs: they never
    ran, and there is nothing to retry (their requests are expired)."""
    recorder = services.dispatcher.recorder()
    if recorder is None or not removed:
        return
    reason = REMOVED.format(expiry_s=services.claude.pending_expiry_s)
    pipe = recorder.records.client.pipeline(transaction=False)
    at = now_ms()
    for payload in removed:
        recorder.records.failed(pipe, payload, at=at, runtime_ms=0.0, exception=reason)
    execute(pipe)


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
