"""The SDK boundary: one ``messages.create`` call, and what its errors mean for the job.

The SDK's own retries are off (``max_retries=0``): Skyline's queue retries, so every
attempt shows in the request's record and the job's history. This module imports the
``anthropic`` package, which takes seconds; the job imports it only when it runs.
"""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC
from enum import StrEnum
from typing import Any

import anthropic

from core.claude.cost import Usage
from core.claude.records import ClaudeRequestRecord
from core.claude.settings import ClaudeSettings

CONNECT_TIMEOUT_S = 10.0
OVERLOADED = 529
# The SDK retries these itself when allowed to: the request may well succeed again.
RETRYABLE_CLIENT_ERRORS = (408, 409)


@dataclass(frozen=True)
class Answer:
    text: str
    stop_reason: str | None
    usage: Usage
    headers: dict[str, str]


class Action(StrEnum):
    RATE_LIMITED = "rate_limited"  # 429: come back after retry-after
    OVERLOADED = "overloaded"  # 529: likewise, and it uses a try
    RETRY = "retry"  # 5xx, network, timeout: the queue's backoff
    FAIL = "fail"  # the request itself is wrong: trying again cannot help


@dataclass(frozen=True)
class Judgement:
    action: Action
    error: str
    retry_after_s: float | None = None
    headers: dict[str, str] = field(default_factory=dict)


async def create_message(settings: ClaudeSettings, request: ClaudeRequestRecord) -> Answer:
    """Send the request; raises the SDK's errors (see ``judge``)."""
    async with _client(settings) as client:
        raw = await client.messages.with_raw_response.create(**_params(request))
        message = await raw.parse()
    text = "".join(block.text for block in message.content if block.type == "text")
    return Answer(text, message.stop_reason, Usage.from_api(message.usage), dict(raw.headers))


def _client(settings: ClaudeSettings) -> anthropic.AsyncAnthropic:
    api_key = settings.api_key.get_secret_value() if settings.api_key else None
    timeout = anthropic.Timeout(
        settings.timeout_s, connect=min(CONNECT_TIMEOUT_S, settings.timeout_s)
    )
    return anthropic.AsyncAnthropic(
        api_key=api_key, base_url=settings.base_url, max_retries=0, timeout=timeout
    )


def _params(request: ClaudeRequestRecord) -> dict[str, Any]:
    """The request as the SDK takes it. The temperature is not among it: API version
    2026-10-21 (the SDK's) refuses every sampling parameter, so it only decides caching."""
    params: dict[str, Any] = dict(
        model=request.model, messages=request.messages, max_tokens=request.max_tokens
    )
    if request.system is not None:
        params["system"] = request.system
    return params


def judge(exc: BaseException) -> Judgement:
    """What the job does after ``exc``; anything unexpected is retried with backoff."""
    if isinstance(exc, anthropic.APIStatusError):
        return _judge_status(exc)
    if isinstance(exc, anthropic.APITimeoutError):
        return Judgement(Action.RETRY, "timed out waiting for the API")
    if isinstance(exc, anthropic.APIConnectionError):
        return Judgement(Action.RETRY, f"could not reach the API: {exc.__cause__ or exc}")
    if isinstance(exc, anthropic.CredentialsError):
        return Judgement(Action.FAIL, f"no usable API credentials: {exc}")
    return Judgement(Action.RETRY, f"{type(exc).__name__}: {exc}")


def _judge_status(exc: anthropic.APIStatusError) -> Judgement:
    headers = dict(exc.response.headers)
    error = f"{exc.status_code} {exc.type or 'error'}: {exc.api_message or exc.message}"
    if isinstance(exc, anthropic.RateLimitError):
        return Judgement(Action.RATE_LIMITED, error, retry_after_s(headers), headers)
    if exc.status_code == OVERLOADED:
        return Judgement(Action.OVERLOADED, error, retry_after_s(headers), headers)
    if exc.status_code >= 500 or exc.status_code in RETRYABLE_CLIENT_ERRORS:
        return Judgement(Action.RETRY, error, headers=headers)
    return Judgement(Action.FAIL, error, headers=headers)


def retry_after_s(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds the API asked us to wait: ``retry-after-ms``, else ``retry-after`` (seconds
    or an HTTP date); None when it named no readable wait."""
    lowered = {name.lower(): value for name, value in headers.items()}
    milliseconds = _seconds(lowered.get("retry-after-ms"))
    if milliseconds is not None:
        return milliseconds / 1000
    value = lowered.get("retry-after")
    seconds = _seconds(value)
    if seconds is not None or value is None:
        return seconds
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(moment.timestamp() - (time.time() if now is None else now), 0.0)


def _seconds(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return max(number, 0.0) if number is not None and math.isfinite(number) else None
