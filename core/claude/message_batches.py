"""Very large batches through Anthropic's Message Batches API.

``submit_batch`` stores the requests and queues ``create_message_batch``, which sends the
unfinished ones as one Anthropic batch (``custom_id`` = the request's id), marks them
processing and opens the Skyline batch of the same id, whose options keep the Anthropic
batch's id. The scheduler polls every open one (``poll``); once Anthropic has ended it,
the results go into the same request records, at the batch price (half the usual), and
each request counts once in the Skyline batch, so the Batches page follows it and its
``finally`` callback (the batch webhook) runs when the last one is in. Anthropic ends a
batch within 24 hours: the requests it did not get to come back ``expired``.

Polling needs no lock: every write is conditional, so a second scheduler importing the
same results changes nothing.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from core.batch_store import COLUMNS, BatchRecord
from core.claude import webhooks
from core.claude.cost import Usage, cost_usd
from core.claude.records import ClaudeRequestRecord, Response, Status
from core.claude.services import ClaudeServices, default_services
from core.claude.settings import ClaudeSettings
from core.context import current_job
from core.execution import MaxAttemptsExceededError, backoff_delay
from core.job import PreparedJob, job
from core.models import JobBatch

if TYPE_CHECKING:
    import anthropic
    from anthropic.types.messages import MessageBatchIndividualResponse

    from core.claude.api import Judgement

JOB_NAME = "skyline.claude.message_batch"
MODE = "message_batches"
OPTION = "claude"  # the Skyline batch's options hold the Claude part under this key
BATCH_ID_OPTION = "message_batch_id"
BATCH_PRICE = 0.5  # Message Batches cost half the Messages API's price
PAGE = 500
CREATE_MARGIN_S = 300  # the creating job's timeout beyond the API call: one write per request
EXPIRED = "the Message Batch ended (24 hours at most) before this request was processed"
NO_RESULT = "the Message Batch ended without a result for this request"
GONE = "the Message Batch is no longer available at Anthropic"

log = logging.getLogger("skyline.claude.message_batches")


class MessageBatchError(RuntimeError):
    """Why a request of a Message Batch counts as failed in its Skyline batch."""


def claude_options(record: BatchRecord) -> dict[str, Any]:
    part = record.options.get(OPTION)
    return part if isinstance(part, dict) else {}


def is_message_batch(record: BatchRecord) -> bool:
    """A Claude batch that went to the Message Batches API: its members are requests."""
    return claude_options(record).get("mode") == MODE


def create_job(
    batch_id: str, name: str, options: dict[str, Any], queue: str, settings: ClaudeSettings
) -> PreparedJob:
    """``options``: the Skyline batch's, to open it with once Anthropic took the batch."""
    return create_message_batch.options(
        queue=queue,
        tries=settings.tries,
        backoff=settings.backoff,
        timeout=settings.timeout_s + CREATE_MARGIN_S,
    ).prepare(batch_id, name, options)


def _creation_failed(exc: BaseException, batch_id: str, name: str, options: dict) -> None:
    from core.claude import api

    reason = str(exc) if isinstance(exc, MaxAttemptsExceededError) else api.judge(exc).error
    close(default_services(), batch_id, f"could not create the Message Batch: {reason}", options)


@job(name=JOB_NAME, on_failed=_creation_failed)
def create_message_batch(batch_id: str, name: str, options: dict[str, Any]) -> None:
    services = default_services()
    batches = services.dispatcher.workflows.batches
    if batches.get(batch_id) is not None:
        return  # an earlier run created it
    requests = _take_unfinished(services, batch_id)
    if not requests:
        return  # all cancelled or expired while they waited
    from core.claude import api  # the SDK takes seconds to import: only where it is used

    entries = [{"custom_id": r.id, "params": api._params(r)} for r in requests]
    try:
        with _client(services.claude) as client:
            created = client.messages.batches.create(requests=entries)
    except Exception as exc:
        _after_create_error(services.claude, api.judge(exc), exc)
        return
    claude = {**options.get(OPTION, {}), BATCH_ID_OPTION: created.id}
    batches.create(
        id=batch_id, name=name, total_jobs=len(requests), options={**options, OPTION: claude}
    )


def _take_unfinished(services: ClaudeServices, batch_id: str) -> list[ClaudeRequestRecord]:
    """Mark the batch's unfinished requests processing (one attempt each); those taken.
    A run after a crash takes again the ones an earlier run had marked."""
    found: list[ClaudeRequestRecord] = []
    for status in (Status.PROCESSING, Status.PENDING):
        found += in_status(services, batch_id, status)
    moved = (services.requests.processing(request.id) for request in found)
    return [request for request in moved if request is not None]


def in_status(services: ClaudeServices, batch_id: str, status: Status) -> list[ClaudeRequestRecord]:
    """Every request of the batch in ``status``, a page per query."""
    found: list[ClaudeRequestRecord] = []
    while page := services.requests.list(
        batch_id=batch_id, status=status, limit=PAGE, offset=len(found)
    ):
        found += page
    return found


def _after_create_error(settings: ClaudeSettings, judgement: Judgement, exc: Exception) -> None:
    """Like a request's job: fail at once on a request error, come back after the
    ``retry-after`` of a 429 / 529, else let the queue's backoff retry."""
    from core.claude.api import Action

    ctx = current_job()
    if judgement.action is Action.FAIL:
        ctx.fail(exc)  # the failed hook closes the batch
        return
    if judgement.action is Action.RETRY:
        raise exc
    free = judgement.action is Action.RATE_LIMITED and settings.retry_429_free
    delay_s = judgement.retry_after_s
    if delay_s is None:
        delay_s = backoff_delay(settings.backoff, max(ctx.attempts, 1))
    ctx.release(delay_s, counts=not free)


def close(
    services: ClaudeServices, batch_id: str, error: str, options: dict[str, Any] | None = None
) -> int:
    """End the batch's unfinished requests. Never created (``options`` given): they fail,
    and its ``finally`` callback runs here, there being no Skyline batch to run it. Else
    the ones Anthropic had (processing) expire and count as failed in the Skyline batch.
    Returns how many ended."""
    workflows = services.dispatcher.workflows
    created = options is None
    unfinished = in_status(services, batch_id, Status.PROCESSING)
    if not created:
        unfinished += in_status(services, batch_id, Status.PENDING)
    ended = 0
    for request in unfinished:
        if not created:
            moved = services.requests.failed(request.id, error)
        else:
            moved = services.requests.expired_one(request.id, error)
            workflows.member_failed(_member(batch_id, request.id), MessageBatchError(error))
        webhooks.request_finished(services, moved)
        ended += moved is not None
    if options is not None and ended and options.get("finally"):
        workflows.fire(options["finally"], batch_id=batch_id)
    return ended


def poll(services: ClaudeServices) -> list[str]:
    """Look at every open Message Batch; import the results of those Anthropic has ended.
    Returns the ids of the batches it closed."""
    records = [r for r in _open_batches(services) if claude_options(r).get(BATCH_ID_OPTION)]
    if not records:
        return []
    with _client(services.claude) as client:
        return [record.id for record in records if _poll_one(services, client, record)]


def _poll_one(services: ClaudeServices, client: anthropic.Anthropic, record: BatchRecord) -> bool:
    import anthropic

    message_batch_id = claude_options(record)[BATCH_ID_OPTION]
    try:
        batch = client.messages.batches.retrieve(message_batch_id)
        if batch.processing_status != "ended":
            return False
        ended_without = GONE if batch.archived_at is not None else NO_RESULT
        if batch.archived_at is None:
            for line in client.messages.batches.results(message_batch_id):
                _import(services, record.id, line)
    except anthropic.NotFoundError:
        ended_without = GONE
    except anthropic.AnthropicError as exc:
        log.warning("could not read Message Batch %s: %s", message_batch_id, exc)
        return False
    close(services, record.id, ended_without)
    return True


def _import(services: ClaudeServices, batch_id: str, line: MessageBatchIndividualResponse) -> None:
    request = services.requests.get(line.custom_id)
    if request is None or request.batch_id != batch_id:
        log.warning("Message Batch %s returned unknown request %r", batch_id, line.custom_id)
        return
    moved, error = _apply(services, request, line.result)
    webhooks.request_finished(services, moved)
    workflows = services.dispatcher.workflows
    if error is None:
        workflows.member_succeeded(_member(batch_id, request.id))
    else:
        workflows.member_failed(_member(batch_id, request.id), MessageBatchError(error))


def _apply(
    services: ClaudeServices, request: ClaudeRequestRecord, result: Any
) -> tuple[ClaudeRequestRecord | None, str | None]:
    """The request's new record (None: it had moved on already) and, for a failure, why."""
    requests = services.requests
    if result.type == "succeeded":
        return requests.completed(request.id, _response(services.claude, request, result)), None
    if result.type == "canceled":
        return requests.cancelled(request.id), None
    if result.type == "errored":
        error = f"{result.error.error.type}: {result.error.error.message}"
        return requests.failed(request.id, error), error
    return requests.expired_one(request.id, EXPIRED), EXPIRED


def _response(settings: ClaudeSettings, request: ClaudeRequestRecord, result: Any) -> Response:
    message = result.message
    usage = Usage.from_api(message.usage)
    prices = settings.models.get(request.model)
    cost = cost_usd(usage, prices) * BATCH_PRICE if prices else 0.0
    text = "".join(block.text for block in message.content if block.type == "text")
    return Response(text, message.stop_reason, usage, cost)


def cancel(services: ClaudeServices, record: BatchRecord) -> None:
    """Ask Anthropic to cancel; its requests become cancelled when the batch has ended,
    except those it had answered already (they are paid for, so they are kept)."""
    with _client(services.claude) as client:
        client.messages.batches.cancel(claude_options(record)[BATCH_ID_OPTION])


def _open_batches(services: ClaudeServices) -> list[BatchRecord]:
    """Unfinished Skyline batches that hold a Message Batch: few, however many batches
    have been kept."""
    query = select(*COLUMNS).where(
        JobBatch.finished_at.is_(None),
        JobBatch.options.contains(f'"{BATCH_ID_OPTION}"', autoescape=True),
    )
    with services.engine.connect() as connection:
        return [BatchRecord.from_row(row) for row in connection.execute(query)]


def _client(settings: ClaudeSettings) -> anthropic.Anthropic:
    """A blocking client (the scheduler and the creating job are threads); no retries of
    its own, as in ``core.claude.api``."""
    import anthropic

    from core.claude.api import CONNECT_TIMEOUT_S

    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    timeout = anthropic.Timeout(
        settings.timeout_s, connect=min(CONNECT_TIMEOUT_S, settings.timeout_s)
    )
    return anthropic.Anthropic(
        api_key=api_key, base_url=settings.base_url, max_retries=0, timeout=timeout
    )


def _member(batch_id: str, request_id: str) -> dict[str, str]:
    return {"id": batch_id, "member": request_id}
