"""The job that runs one Claude request, registered as ``skyline.claude.request``.

Workers that serve the ``claude-high``, ``claude-normal`` and ``claude-low`` queues list
this module in their ``app`` setting; it brings the webhook and Message Batch jobs along.
The job is async, so one worker process with ``concurrency`` > 1 keeps many slow API
calls in flight; the SQL writes run in threads.

What happens after an error is the API's call: a 429 or 529 brings the job back after
the ``retry-after`` the API sent (a 429 without using a try, unless configured otherwise);
a 5xx, a timeout or a network error raises, so the queue's tries and backoff apply; a
request the API rejects (400, 401, 403, 404, 413, ...) fails at once with its message.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from core.claude import message_batches, webhooks  # noqa: F401  (their jobs run in workers too)
from core.claude.cost import Usage, cost_usd, estimate_input_tokens
from core.claude.records import UNFINISHED, ClaudeRequestRecord, Response, Status
from core.claude.services import ClaudeServices, default_services
from core.claude.settings import ClaudeSettings
from core.context import JobContext, current_job
from core.execution import MaxAttemptsExceededError, backoff_delay
from core.job import PreparedJob, job

if TYPE_CHECKING:
    from core.claude.api import Answer, Judgement

JOB_NAME = "skyline.claude.request"
# The job's timeout is the API call's plus this: the wait for rate-limit budget and the
# SQL writes happen inside the job too.
JOB_TIMEOUT_MARGIN_S = 120
# A retry that another retry of the same failed job is ahead of looks again this often
# whether that one has finished.
RETRY_WAIT_S = 10.0
REOPENED = ":reopened"  # the retry's claim, once its holder has reopened the request


class RetryTakenError(Exception):
    """A retried job that did not send its request: another retry of the same failed job
    took it. The request itself says how that went."""


def queue_for(priority: str) -> str:
    return f"claude-{priority}"


class Limiter(Protocol):
    """The shared rate limiter, as the job uses it; one per run of the job, so it may keep
    what ``acquire`` reserved until ``record`` settles it."""

    async def acquire(self, model: str, input_tokens_estimate: int, max_tokens: int) -> float:
        """Wait for budget. 0 when the request may go now; else the seconds after which to
        try again (the job is then released for that long, without using a try)."""
        ...

    def record(self, model: str, usage: Usage | None, headers: Mapping[str, str]) -> None:
        """What the request used (None: it was not answered) and the API's rate-limit headers."""
        ...


class NoLimit:
    async def acquire(self, model: str, input_tokens_estimate: int, max_tokens: int) -> float:
        return 0.0

    def record(self, model: str, usage: Usage | None, headers: Mapping[str, str]) -> None:
        return None


def limiter_for(services: ClaudeServices) -> Limiter:
    """The shared Redis rate limiter, when any model has limits configured."""
    from core.claude.limits import shared_limiter

    return shared_limiter(services) or NoLimit()


def _failed_for_good(exc: BaseException, request_id: str) -> None:
    """The worker gave up on the job (tries used up, timed out, worker lost): the record
    says why, in the words of the last attempt when it was simply one try too many."""
    from core.claude import api

    if isinstance(exc, RetryTakenError):
        return  # the request is the other retry's to finish
    error = None if isinstance(exc, MaxAttemptsExceededError) else api.judge(exc).error
    services = default_services()
    webhooks.request_finished(services, services.requests.failed(request_id, error))


@job(name=JOB_NAME, on_failed=_failed_for_good)
async def process_request(request_id: str) -> None:
    services = default_services()
    retry_of = current_job().body.get("retry_of")
    if isinstance(retry_of, str) and not await asyncio.to_thread(
        _take_retry, services, request_id, retry_of
    ):
        return
    await run_request(services, request_id, limiter_for(services))


def _take_retry(services: ClaudeServices, request_id: str, retry_of: str) -> bool:
    """A retried failed job sends its request again: the request, if failed, is reopened
    (``ClaudeRequestRepository.reopened``) and then runs as any other; one that has ended
    otherwise meanwhile is skipped, as ever. False when another retry has it (this job then
    waits for that one, see ``_behind_another_retry``).

    Two retries of one failed job (two operators, the CLI and the dashboard at once) would
    both find the request pending once one had reopened it, and both send it. So the first
    to run claims the retry in Redis under its job id, so that its own later attempts
    (after a 5xx, or a wait for budget) go on, and marks the claim once it has reopened the
    request. The claim lasts ``pending_expiry_s``; a job still running after that claims
    it again.
    """
    client = services.dispatcher.queue().client
    key = services.dispatcher.keys.unique_lock(JOB_NAME, f"retry:{retry_of}")
    job_id = current_job().job_id
    if client.set(key, job_id, nx=True, ex=services.claude.pending_expiry_s):
        holder = job_id
    else:
        holder = (client.get(key) or b"").decode()
    if holder.removesuffix(REOPENED) != job_id:
        _behind_another_retry(services, request_id, retry_of, holder.endswith(REOPENED))
        return False
    services.requests.reopened(request_id)
    client.set(key, job_id + REOPENED, xx=True, keepttl=True)
    return True


def _behind_another_retry(
    services: ClaudeServices, request_id: str, retry_of: str, reopened: bool
) -> None:
    """Another retry of the same failed job sends the request: wait while it does, so that
    this job ends as the request did (a Skyline batch counts the job). Completed (or
    cancelled, expired) it completes; failed again once the other had reopened it, it
    fails, without touching the request nor moving the batch (it counts that member
    failed already)."""
    request = services.requests.get(request_id)
    if request is None:
        return
    if request.status in UNFINISHED or (request.status is Status.FAILED and not reopened):
        current_job().release(RETRY_WAIT_S, counts=False)
    elif request.status is Status.FAILED:
        current_job().fail(
            RetryTakenError(
                f"request {request_id} was not sent again: another retry of failed job"
                f" {retry_of} sent it; the request's page says how that went"
            )
        )


def request_job(request_id: str, priority: str, settings: ClaudeSettings) -> PreparedJob:
    """The job for one stored request, on its priority's queue, with the Claude retry policy."""
    return process_request.options(
        queue=queue_for(priority),
        tries=settings.tries,
        backoff=settings.backoff,
        timeout=settings.timeout_s + JOB_TIMEOUT_MARGIN_S,
    ).prepare(request_id)


async def run_request(services: ClaudeServices, request_id: str, limiter: Limiter) -> None:
    request = await asyncio.to_thread(services.requests.get, request_id)
    if request is None or request.status not in UNFINISHED:
        return  # cancelled, expired or already answered: it is not sent
    if await asyncio.to_thread(_answer_from_cache, services, request):
        return
    # The SDK takes seconds to import: only where it is used, and before the budget is
    # taken, so that the call follows its admission closely (the limiter counts on it).
    from core.claude import api

    estimate = estimate_input_tokens(request.messages, request.system)
    wait_s = await limiter.acquire(request.model, estimate, request.max_tokens)
    if wait_s > 0:
        current_job().release(wait_s, counts=False)
        return
    started = await asyncio.to_thread(services.requests.processing, request_id)
    if started is None:
        # Cancelled while it waited for budget: give the budget back.
        await asyncio.to_thread(limiter.record, request.model, None, {})
        return
    try:
        answer = await api.create_message(services.claude, started)
    except Exception as exc:
        judgement = api.judge(exc)
        await asyncio.to_thread(_after_error, services, started, limiter, judgement, exc)
        return
    await asyncio.to_thread(_after_answer, services, started, limiter, answer)


def _answer_from_cache(services: ClaudeServices, request: ClaudeRequestRecord) -> bool:
    cached = services.cache.get(request)
    if cached is None:
        return False
    if services.requests.processing(request.id) is not None:
        response = Response(cached.text, cached.stop_reason, Usage(), 0.0, cached=True)
        webhooks.request_finished(services, services.requests.completed(request.id, response))
    return True


def _after_answer(
    services: ClaudeServices, request: ClaudeRequestRecord, limiter: Limiter, answer: Answer
) -> None:
    limiter.record(request.model, answer.usage, answer.headers)
    prices = services.claude.models.get(request.model)
    cost = cost_usd(answer.usage, prices) if prices else 0.0
    response = Response(answer.text, answer.stop_reason, answer.usage, cost)
    webhooks.request_finished(services, services.requests.completed(request.id, response))
    services.cache.put(request, answer.text, answer.stop_reason)


def _after_error(
    services: ClaudeServices,
    request: ClaudeRequestRecord,
    limiter: Limiter,
    judgement: Judgement,
    exc: Exception,
) -> None:
    from core.claude.api import Action

    limiter.record(request.model, None, judgement.headers)
    if judgement.action is Action.FAIL:
        _fail(services, request, judgement.error, exc)
        return
    services.requests.retrying(
        request.id,
        judgement.error,
        rate_limited=judgement.action is Action.RATE_LIMITED,
        overloaded=judgement.action is Action.OVERLOADED,
    )
    if judgement.action is Action.RETRY:
        raise exc  # the queue's tries and backoff decide; the failed hook has the last word
    _come_back_later(services, request, judgement, exc)


def _come_back_later(
    services: ClaudeServices, request: ClaudeRequestRecord, judgement: Judgement, exc: Exception
) -> None:
    """After a 429 or 529: release the job for the ``retry-after`` the API sent (else the
    backoff). A 429 gives its try back when so configured: the API never ran the request."""
    from core.claude.api import Action

    ctx = current_job()
    free = judgement.action is Action.RATE_LIMITED and services.claude.retry_429_free
    if not free and _last_try(ctx):
        _fail(services, request, judgement.error, exc)  # released, it would only be refused
        return
    delay_s = judgement.retry_after_s
    if delay_s is None:
        delay_s = backoff_delay(services.claude.backoff, max(ctx.attempts, 1))
    ctx.release(delay_s, counts=not free)


def _fail(
    services: ClaudeServices, request: ClaudeRequestRecord, error: str, exc: Exception
) -> None:
    webhooks.request_finished(services, services.requests.failed(request.id, error))
    current_job().fail(exc)  # the failed-jobs store keeps the SDK's exception and traceback


def _last_try(ctx: JobContext) -> bool:
    tries = ctx.body.get("options", {}).get("tries")
    return bool(tries) and ctx.attempts >= tries
