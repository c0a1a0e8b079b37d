"""Running one job: from a reserved payload to an ``Outcome``.

This module decides what happened; the worker (or the sync connection) then
settles it with the queue. Nothing here touches Redis.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from core import context
from core.context import Services
from core.job import JobDefinition
from core.middleware import Middleware
from core.payload import Payload
from core.registry import JobRegistry, UnknownJobError
from core.serialization import ArgumentError, Decoder, ModelNotFoundError


class Result(StrEnum):
    COMPLETED = "completed"
    RELEASED = "released"
    DELETED = "deleted"
    FAILED = "failed"
    RAISED = "raised"


class MaxAttemptsExceededError(Exception):
    pass


class WorkerLostError(Exception):
    """The job's worker died under it too many times."""


class JobTimeoutError(TimeoutError):
    pass


class JobFailedError(Exception):
    """A job failed itself with a reason."""


@dataclass(frozen=True)
class WorkerDefaults:
    """Options the worker applies where a job sets none."""

    tries: int = 1
    backoff: int | list[int] = 0
    timeout: float = 60
    worker_lost_limit: int = 3


@dataclass
class Outcome:
    result: Result
    exception: BaseException | None = None
    delay_s: float = 0.0
    runtime_s: float = 0.0
    counts: bool = True  # a release that gives the attempt back sets False
    chain: list[dict] | None = None  # the chain as the job left it, when it changed it


@dataclass
class Prepared:
    """A payload resolved against the registry, ready to call."""

    definition: JobDefinition
    call: Any
    args: list[Any]
    kwargs: dict[str, Any]
    decoder: Decoder
    is_async: bool


def refuse_before_running(
    payload: Payload, defaults: WorkerDefaults, now_ms: int
) -> Outcome | None:
    """A failed outcome when the job must not run again, else None."""
    if payload.lost >= defaults.worker_lost_limit:
        return _failed(
            WorkerLostError(
                f"the worker running this job was lost {payload.lost} times (killed, crashed or "
                "stalled past its lease); failing it so it cannot take more workers down"
            )
        )
    tries = payload.option("tries", defaults.tries)
    retry_until = payload.option("retry_until")
    if retry_until is not None and now_ms > retry_until:
        return _failed(MaxAttemptsExceededError("the job's retry_until time has passed"))
    if retry_until is None and tries > 0 and payload.tried > tries:
        return _failed(
            MaxAttemptsExceededError(
                f"{payload.job_name} has been attempted too many times ({tries} tries allowed)"
            )
        )
    return None


def prepare(payload: Payload, registry: JobRegistry) -> Prepared | Outcome:
    """Resolve the job and decode its arguments, or say why it cannot run."""
    decoder = Decoder()
    try:
        definition = registry.get(payload.job_name)
        args = decoder.decode(payload.body.get("args", []))
        kwargs = decoder.decode(payload.body.get("kwargs", {}))
        if not isinstance(args, list) or not isinstance(kwargs, dict):
            raise ArgumentError("payload args must be a list and kwargs an object")
        call = definition.build(args, kwargs)
    except ModelNotFoundError as exc:
        decoder.close()
        if payload.option("delete_when_missing_models", False):
            return Outcome(Result.DELETED, exc)
        return _failed(exc)
    except (UnknownJobError, ArgumentError) as exc:
        decoder.close()
        return _failed(exc)
    target = call if definition.is_class else definition.target
    is_async = inspect.iscoroutinefunction(target)
    return Prepared(definition, call, args, kwargs, decoder, is_async)


def run_sync(prepared: Prepared, payload: Payload, services: Services | None = None) -> Outcome:
    ctx, token, started = _enter(prepared, payload, services)
    ran: list[Middleware] = []
    error: BaseException | None = None
    try:
        if _let_through(prepared, ctx, ran):
            prepared.call()
    except Exception as exc:
        error = exc
    finally:
        outcome = _finish(ctx, ran, error, started)
        context.leave(token)
        prepared.decoder.close()
    return outcome


async def run_async(
    prepared: Prepared,
    payload: Payload,
    timeout_s: float | None,
    services: Services | None = None,
) -> Outcome:
    ctx, token, started = _enter(prepared, payload, services)
    ran: list[Middleware] = []
    error: BaseException | None = None
    try:
        if _let_through(prepared, ctx, ran):
            # Not wait_for: on Python 3.11 it wraps the job in a task of its own (README,
            # *Instructions per job*).
            async with asyncio.timeout(timeout_s or None):
                await prepared.call()
    except TimeoutError:
        error = JobTimeoutError(f"{payload.job_name} ran longer than its {timeout_s:g} s timeout")
    except Exception as exc:
        error = exc
    finally:
        outcome = _finish(ctx, ran, error, started)
        context.leave(token)
        prepared.decoder.close()
    return outcome


def _enter(
    prepared: Prepared, payload: Payload, services: Services | None
) -> tuple[context.JobContext, Any, float]:
    ctx = context.JobContext(payload.id, payload.job_name, payload.queue, payload.attempts)
    ctx.instance = getattr(prepared.call, "__self__", None)
    ctx.args, ctx.kwargs = prepared.args, prepared.kwargs
    ctx.services = services
    ctx.body = payload.body
    return ctx, context.enter(ctx), time.perf_counter()


def _let_through(prepared: Prepared, ctx: context.JobContext, ran: list[Middleware]) -> bool:
    """Run each middleware's ``before``; stop at the first that holds the job back."""
    for middleware in prepared.definition.middleware_for(ctx.instance):
        ran.append(middleware)
        if not middleware.before(ctx) or ctx.decision is not None:
            return False
    return True


def _finish(
    ctx: context.JobContext, ran: list[Middleware], error: BaseException | None, started: float
) -> Outcome:
    """Run the ``after`` hooks, innermost first; one may turn an exception into a decision."""
    for middleware in reversed(ran):
        middleware.after(ctx, error)
    if error is not None and ctx.decision is None:
        return Outcome(Result.RAISED, error, runtime_s=time.perf_counter() - started)
    outcome = _outcome(ctx, started)
    outcome.chain = ctx.chain
    return outcome


def _outcome(ctx: context.JobContext, started: float) -> Outcome:
    runtime = time.perf_counter() - started
    decision = ctx.decision
    if isinstance(decision, context.Release):
        return Outcome(
            Result.RELEASED, delay_s=decision.delay_s, runtime_s=runtime, counts=decision.counts
        )
    if isinstance(decision, context.Delete):
        return Outcome(Result.DELETED, runtime_s=runtime)
    if isinstance(decision, context.Fail):
        reason = decision.reason
        exc = reason if isinstance(reason, BaseException) else JobFailedError(reason)
        return Outcome(Result.FAILED, exc, runtime_s=runtime)
    return Outcome(Result.COMPLETED, runtime_s=runtime)


def _failed(exc: BaseException) -> Outcome:
    return Outcome(Result.FAILED, exc)


def backoff_delay(backoff: int | list[int], attempt: int) -> float:
    """Seconds before retry number ``attempt`` (1-based); a list's last value repeats."""
    if isinstance(backoff, list):
        return float(backoff[min(attempt, len(backoff)) - 1]) if backoff else 0.0
    return float(backoff)


def retry_after_exception(
    payload: Payload, exc: BaseException, defaults: WorkerDefaults, now_ms: int
) -> float | None:
    """Seconds until the next attempt, or None when the job has failed for good."""
    if isinstance(exc, JobTimeoutError) and payload.option("fail_on_timeout", False):
        return None
    max_exceptions = payload.option("max_exceptions")
    if max_exceptions is not None and payload.exceptions + 1 >= max_exceptions:
        return None
    retry_until = payload.option("retry_until")
    if retry_until is not None:
        return None if now_ms >= retry_until else _delay(payload, defaults)
    tries = payload.option("tries", defaults.tries)
    if tries > 0 and payload.tried >= tries:
        return None
    return _delay(payload, defaults)


def _delay(payload: Payload, defaults: WorkerDefaults) -> float:
    return backoff_delay(payload.option("backoff", defaults.backoff), max(payload.tried, 1))
