"""What the AI pages and the /api/claude endpoints share about Claude requests: whose
requests a principal sees, the Claude services on the dashboard's runtime, a request's
durations and JSON body, cancelling one (one path, one role check, one audit entry), and
reading a JSON body whose 422 names each bad field.

An API token sees only the requests it created (they carry its name as their owner);
anyone signed in to the dashboard sees every request, as every other page shows every job.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from core.claude.records import UNFINISHED, ClaudeRequestRecord, Status
from core.claude.services import ClaudeServices
from dashboard.api import ApiResponse
from dashboard.auth import require
from dashboard.context import dashboard

INVALID = "Some fields are not valid: fields says what to change in each."


def owner_scope(request: Request) -> str | None:
    """The owner whose requests the principal may see; None for all of them."""
    principal = request.state.principal
    return principal.name if principal.via == "token" else None


def claude_services(request: Request) -> ClaudeServices:
    runtime = dashboard(request).runtime
    return ClaudeServices(runtime.dispatcher, runtime.engine)


def found_request(request: Request) -> ClaudeRequestRecord:
    """The request named in the path, if the principal may see it. Another owner's request
    answers 404 like a missing one, so ids never tell a token what exists."""
    request_id = request.path_params["id"]
    record = claude_services(request).requests.get(request_id, owner_scope(request))
    if record is None:
        raise HTTPException(404, f"There is no Claude request {request_id!r}.")
    return record


def status_filter(request: Request) -> Status | None:
    raw = request.query_params.get("status") or None
    if raw is None:
        return None
    try:
        return Status(raw)
    except ValueError:
        allowed = ", ".join(status.value for status in Status)
        raise HTTPException(400, f"status must be one of {allowed}, not {raw!r}.") from None


@dataclass(frozen=True)
class Durations:
    """Milliseconds waiting for a worker, running (first start to the end, retries and
    their waits included) and in all; an unfinished request's count up to now."""

    queued_ms: float
    running_ms: float | None  # None: never started
    total_ms: float


def durations(record: ClaudeRequestRecord, now: datetime | None = None) -> Durations:
    end = record.finished_at or now or datetime.now(UTC)
    started = record.started_at
    return Durations(
        queued_ms=_ms(record.created_at, started or end),
        running_ms=None if started is None else _ms(started, end),
        total_ms=_ms(record.created_at, end),
    )


def _ms(start: datetime, end: datetime) -> float:
    return max((end - start).total_seconds() * 1000, 0.0)


def summary_body(record: ClaudeRequestRecord) -> dict[str, Any]:
    """A request in a list: what it is and how it went, without its text."""
    return {
        "id": record.id,
        "status": record.status,
        "priority": record.priority,
        "model": record.model,
        "batch_id": record.batch_id,
        "usage": asdict(record.usage),
        "cost_usd": record.cost_usd,
        "cached": record.cached,
        "attempts": record.attempts,
        "times_rate_limited": record.times_rate_limited,
        "times_overloaded": record.times_overloaded,
        "error": record.error,
        "created_at": record.created_at,
        "started_at": record.started_at,
        "finished_at": record.finished_at,
        "durations": asdict(durations(record)),
    }


def request_body(record: ClaudeRequestRecord) -> dict[str, Any]:
    """One request in full: its summary, what was asked and what came back."""
    answered = record.response_text is not None
    response = {"text": record.response_text, "stop_reason": record.stop_reason}
    return {
        **summary_body(record),
        "owner": record.owner,
        "system": record.system,
        "messages": record.messages,
        "max_tokens": record.max_tokens,
        "temperature": record.temperature,
        "webhook_url": record.webhook_url,
        "response": response if answered else None,
    }


def cancel_request(request: Request, record: ClaudeRequestRecord) -> ClaudeRequestRecord | None:
    """Cancel a pending or processing request; None when it had finished already. A job
    still queued for it finds it cancelled and does not send it."""
    require(request, "operator")
    if record.status not in UNFINISHED:
        return None
    cancelled = claude_services(request).requests.cancelled(record.id, owner_scope(request))
    if cancelled is not None:
        dashboard(request).record(request, "claude.cancel", record.id, owner=record.owner)
    return cancelled


class InvalidFields(Exception):
    """Answered 422 with each bad field named (an HTTPException's body has no room for it)."""

    def __init__(self, fields: dict[str, str], error: str = INVALID) -> None:
        super().__init__(error)
        self.fields = fields
        self.error = error

    def response(self) -> ApiResponse:
        return ApiResponse({"error": self.error, "fields": self.fields}, status_code=422)


async def json_object(request: Request, max_bytes: int, example: str) -> dict[str, Any]:
    """The body as a JSON object: 413 past ``max_bytes`` (read no further), 400 otherwise."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise HTTPException(413, f"The body is larger than {max_bytes:,} bytes.")
    try:
        value = json.loads(body)
    except ValueError:
        raise HTTPException(400, f"The body is not JSON. Send {example}.") from None
    if not isinstance(value, dict):
        raise HTTPException(400, f"The body must be a JSON object: {example}.")
    return value


def unknown_fields(body: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, str]:
    hint = f"is not a field here (known: {', '.join(allowed)})"
    return {name: hint for name in body if name not in allowed}


def owner_of(request: Request) -> str:
    """Whoever submits owns the request: a token by its name, a person by their email."""
    return request.state.principal.name
