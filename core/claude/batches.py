"""Claude batches: many prompts submitted together, then followed and cancelled as one.

Below ``[claude] batch_api_threshold`` prompts, a batch is a Skyline batch of request
jobs; at or above it, Anthropic's Message Batches API runs it (half the price, within 24
hours; see ``core.claude.message_batches``). Either way the requests share the batch's
id, and so does the Skyline batch, so the Batches page shows its progress too.

    batch_id = submit_batch([{"prompt": "Summarise: ..."}, {"prompt": "..."}], owner="a")
    batch_progress(batch_id)  # {"completed": 1, ..., "percentage": 50.0, "mode": "jobs"}

A Message Batches batch that has ended with errored or expired requests is retried by
``retry_failed_requests``: those requests again, as a new batch (see there).
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from typing import Any

from core.batch_store import BatchRecord
from core.claude import message_batches
from core.claude.job import queue_for, request_job
from core.claude.message_batches import (
    BATCH_ID_OPTION,
    MODE,
    OPTION,
    claude_options,
    in_status,
    is_message_batch,
)
from core.claude.records import ClaudeRequestRecord, NewRequest, Status
from core.claude.services import ClaudeServices, default_services
from core.claude.settings import ClaudeSettings
from core.claude.submission import RequestValidationError, _webhook_problem, validate
from core.claude.webhooks import batch_callback
from core.payload import new_job_id
from core.specs import callback_body, item_spec

JOBS = "jobs"
MAX_REQUESTS = 100_000  # what one Message Batch may hold
MAX_NAME_CHARS = 255
MAX_ERRORS = 100  # a 422 names this many bad fields at most
DEFAULT_NAME = "Claude batch"
PROMPT_FIELDS = frozenset({"prompt", "messages", "system", "model", "max_tokens", "temperature"})
BATCH_FIELDS = ("owner", "priority")  # the batch's own: reported once, not per prompt
RETRIED = (Status.FAILED, Status.EXPIRED)  # the requests a retry sends again
RETRY_SUFFIX = " (retry)"
# A retry's batch id is derived from its batch's: a second retry finds the first.
RETRY_NAMESPACE = uuid.UUID("5f0b8a2e-8c1d-4f7e-9a61-3d2f6b0c9e41")


@dataclass(frozen=True)
class BatchRetry:
    batch_id: str  # the retry's batch
    requests: list[str]  # the requests sent again; empty when the batch was retried before
    already: bool = False


def submit_batch(
    prompts: list[dict[str, Any]],
    *,
    owner: str = "",
    webhook_url: str | None = None,
    model: str | None = None,
    max_tokens: int = 1024,
    priority: str = "normal",
    name: str | None = None,
    services: ClaudeServices | None = None,
) -> str:
    """Queue one request per prompt (each a dict with ``prompt`` or ``messages``, and
    optionally ``system``, ``model``, ``max_tokens``, ``temperature``); returns the batch's
    id. Every prompt is checked before anything is stored: RequestValidationError names
    each bad field as ``requests[3].prompt``."""
    services = services or default_services()
    batch_id = new_job_id()
    defaults = dict(owner=owner, model=model, max_tokens=max_tokens, priority=priority)
    _submit(services, batch_id, prompts, defaults, webhook_url, name)
    return batch_id


def retry_failed_requests(batch_id: str, *, services: ClaudeServices | None = None) -> BatchRetry:
    """Send the errored and expired requests of an ended Message Batches batch again, as a
    new batch submitted like the first (same owner, priority, webhook, and each request's
    model, messages, system, max_tokens and temperature): it goes through the Message
    Batches API, or as jobs when the requests are fewer than the threshold.

    The requests have no field naming the one they retry, so the link is per batch: the
    new batch's options name this one (``claude.retry_of``) and its id derives from this
    one's, so a second retry finds the first instead of sending the requests twice; that
    batch's own failures are retried from it. Raises ValueError for a batch that is not an
    ended Message Batches batch, RequestValidationError when a request would no longer be
    accepted (its model or the webhook's host taken out of the settings).
    """
    services = services or default_services()
    record = services.dispatcher.workflows.batches.get(batch_id)
    if record is None or not is_message_batch(record):
        raise ValueError(f"batch {batch_id} is not a Claude batch of the Message Batches API")
    if not record.finished:
        raise ValueError(f"batch {batch_id} has not ended yet: retry it once its results are in")
    retry_id = retry_id_of(batch_id)
    if services.requests.count(batch_id=retry_id):
        return BatchRetry(retry_id, [], already=True)
    failed = [r for status in RETRIED for r in in_status(services, batch_id, status)]
    if not failed:
        return BatchRetry(retry_id, [])
    part = claude_options(record)
    owner, priority = part.get("owner") or "", part.get("priority") or "normal"
    defaults = dict(owner=owner, model=None, max_tokens=1024, priority=priority)
    name = (record.name or DEFAULT_NAME)[: MAX_NAME_CHARS - len(RETRY_SUFFIX)] + RETRY_SUFFIX
    prompts = [_prompt_of(request) for request in failed]
    records = _submit(
        services, retry_id, prompts, defaults, part.get("webhook_url"), name, retry_of=batch_id
    )
    return BatchRetry(retry_id, [r.id for r in records])


def retry_id_of(batch_id: str) -> str:
    """The id that the retry of this batch's failed requests has, or will have."""
    return str(uuid.uuid5(RETRY_NAMESPACE, batch_id))


def retried_as(batch_id: str, *, services: ClaudeServices | None = None) -> str | None:
    """The batch that retried this one's failed requests; None when none has."""
    services = services or default_services()
    retry_id = retry_id_of(batch_id)
    return retry_id if services.requests.count(batch_id=retry_id) else None


def _prompt_of(request: ClaudeRequestRecord) -> dict[str, Any]:
    prompt: dict[str, Any] = dict(
        messages=request.messages,
        model=request.model,
        max_tokens=request.max_tokens,
        temperature=request.temperature,
    )
    if request.system is not None:
        prompt["system"] = request.system
    return prompt


def _submit(
    services: ClaudeServices,
    batch_id: str,
    prompts: list[dict[str, Any]],
    defaults: dict[str, Any],
    webhook_url: str | None,
    name: str | None,
    retry_of: str | None = None,
) -> list[ClaudeRequestRecord]:
    settings = services.claude
    owner, priority = defaults["owner"], defaults["priority"]
    requests = _validated(settings, prompts, batch_id, defaults, webhook_url, name)
    records = services.requests.create_many(requests)
    mode = MODE if len(records) >= settings.batch_api_threshold else JOBS
    options = _options(services, mode, owner, priority, webhook_url, retry_of)
    try:
        if mode == JOBS:
            _start_jobs(services, batch_id, name or DEFAULT_NAME, options, records)
        else:
            name, queue = name or DEFAULT_NAME, queue_for(priority)
            creating = message_batches.create_job(batch_id, name, options, queue, settings)
            services.dispatcher.dispatch([creating])
    except Exception as exc:
        for record in records:
            services.requests.failed(record.id, f"could not queue the request: {exc}")
        raise
    return records


def batch_progress(
    batch_id: str, owner: str | None = None, *, services: ClaudeServices | None = None
) -> dict[str, Any] | None:
    """The batch's requests by status, with ``total``, ``percentage`` (finished, rounded
    down to 0.1), ``finished`` and ``mode``; None for a batch unknown (or not ``owner``'s)."""
    services = services or default_services()
    counts = services.requests.counts(owner=owner, batch_id=batch_id)
    total = sum(counts.values())
    record = services.dispatcher.workflows.batches.get(batch_id)
    if total == 0 and not _belongs(record, owner):
        return None
    part = claude_options(record) if record else {}
    # Without its Skyline batch (a Message Batch not created yet, or a batch pruned since)
    # the mode is the one submit_batch chose for this many requests.
    mode = part.get("mode") or (MODE if total >= services.claude.batch_api_threshold else JOBS)
    finished = total - counts[Status.PENDING] - counts[Status.PROCESSING]
    return {
        "id": batch_id,
        **{status.value: counts[status] for status in Status},
        "total": total,
        "percentage": math.floor(finished * 1000 / total) / 10 if total else 100.0,
        "finished": finished == total,
        "mode": mode,
        "message_batch_id": part.get(BATCH_ID_OPTION),
    }


def cancel_batch(
    batch_id: str, owner: str | None = None, *, services: ClaudeServices | None = None
) -> int:
    """Cancel the batch's requests still waiting; returns how many.

    In a Message Batch Anthropic has taken, that is every request not answered yet: they
    become cancelled when it has ended, except those Anthropic had answered by then
    (they are paid for, so they keep their answers). Raises the SDK's error when
    Anthropic cannot be told.
    """
    services = services or default_services()
    record = services.dispatcher.workflows.batches.get(batch_id)
    if record is not None and claude_options(record).get(BATCH_ID_OPTION):
        if not _belongs(record, owner):
            return 0
        cancelled = services.requests.count(batch_id=batch_id, status=Status.PROCESSING)
        if cancelled:
            message_batches.cancel(services, record)
    else:
        cancelled = _cancel_pending(services, batch_id, owner)
    if record is not None and cancelled and _belongs(record, owner):
        services.dispatcher.workflows.batches.cancel(batch_id)
    return cancelled


def _cancel_pending(services: ClaudeServices, batch_id: str, owner: str | None) -> int:
    """Their jobs stay queued and skip the request when they come up (they count as done
    in the Skyline batch): finding them would mean reading the whole queue."""
    cancelled = 0
    while page := services.requests.list(
        owner=owner, batch_id=batch_id, status=Status.PENDING, limit=message_batches.PAGE
    ):
        cancelled += sum(services.requests.cancelled(r.id, owner) is not None for r in page)
    return cancelled


def _belongs(record: BatchRecord | None, owner: str | None) -> bool:
    """A Claude batch, and ``owner``'s when one is given."""
    if record is None or OPTION not in record.options:
        return False
    return owner is None or claude_options(record).get("owner") == owner


def _start_jobs(
    services: ClaudeServices,
    batch_id: str,
    name: str,
    options: dict[str, Any],
    records: list[ClaudeRequestRecord],
) -> None:
    """The Skyline batch under the batch's own id, then its jobs (counted before they are
    pushed, so it cannot finish early)."""
    workflows = services.dispatcher.workflows
    workflows.batches.create(id=batch_id, name=name, total_jobs=0, options=options)
    jobs = (request_job(r.id, r.priority, services.claude) for r in records)
    workflows.add_to_batch(batch_id, [item_spec(job, services.dispatcher, {}) for job in jobs])


def _options(
    services: ClaudeServices,
    mode: str,
    owner: str,
    priority: str,
    webhook_url: str | None,
    retry_of: str | None = None,
) -> dict[str, Any]:
    """The Skyline batch's options. Failed requests must not cancel the others."""
    claude = {"mode": mode, "owner": owner, "priority": priority, "webhook_url": webhook_url}
    if retry_of is not None:
        claude["retry_of"] = retry_of
    options: dict[str, Any] = {"allow_failures": True, OPTION: claude}
    if webhook_url:
        callback = batch_callback(services.claude, priority, webhook_url)
        options["finally"] = callback_body(callback, services.dispatcher, {})
    return options


def _validated(
    settings: ClaudeSettings,
    prompts: Any,
    batch_id: str,
    defaults: dict[str, Any],
    webhook_url: Any,
    name: Any,
) -> list[NewRequest]:
    errors = _batch_problems(settings, prompts, webhook_url, name)
    requests: list[NewRequest] = []
    for index, prompt in enumerate(prompts if "requests" not in errors else []):
        if len(errors) >= MAX_ERRORS:
            errors["requests"] = f"more prompts may be wrong: fix these {MAX_ERRORS} first"
            break
        try:
            requests.append(_one(settings, prompt, batch_id, defaults))
        except RequestValidationError as exc:
            for field, problem in exc.errors.items():
                errors[_error_key(field, index)] = problem
    if errors:
        raise RequestValidationError(errors)
    return requests


def _batch_problems(
    settings: ClaudeSettings, prompts: Any, webhook_url: Any, name: Any
) -> dict[str, str]:
    found = {
        "webhook_url": _webhook_problem(webhook_url, settings.webhook_hosts),
        "name": None,
        "requests": None,
    }
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME_CHARS):
        found["name"] = f"must be text of at most {MAX_NAME_CHARS} characters"
    if not isinstance(prompts, list) or not prompts:
        found["requests"] = "must be a non-empty list of prompts"
    elif len(prompts) > MAX_REQUESTS:
        found["requests"] = f"holds {len(prompts):,} prompts; at most {MAX_REQUESTS:,} are allowed"
    return {field: problem for field, problem in found.items() if problem}


def _error_key(field: str, index: int) -> str:
    if field in BATCH_FIELDS:
        return field
    return f"requests[{index}].{field}" if field else f"requests[{index}]"


def _one(
    settings: ClaudeSettings, prompt: Any, batch_id: str, defaults: dict[str, Any]
) -> NewRequest:
    if not isinstance(prompt, dict):
        raise RequestValidationError({"": "must be an object with a prompt or messages"})
    unknown = sorted(set(prompt) - PROMPT_FIELDS)
    if unknown:
        raise RequestValidationError({"": f"unknown field(s): {', '.join(map(str, unknown))}"})
    return validate(
        settings,
        prompt=prompt.get("prompt"),
        messages=prompt.get("messages"),
        model=prompt.get("model", defaults["model"]),
        system=prompt.get("system"),
        max_tokens=prompt.get("max_tokens", defaults["max_tokens"]),
        temperature=prompt.get("temperature", 1.0),
        owner=defaults["owner"],
        priority=defaults["priority"],
        batch_id=batch_id,
    )
