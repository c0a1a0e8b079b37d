"""Claude batches over HTTP, under /api/claude/batches: submit many prompts as one batch,
follow its progress, cancel what is left of it.

Scoped like single requests (``dashboard/views/claude_api.py``): a token sees only its own
batches, and another owner's answers 404. Creating and cancelling need the operator role.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.claude.batches import batch_progress, cancel_batch, submit_batch
from core.claude.submission import RequestValidationError
from dashboard.api import ApiResponse
from dashboard.auth import requires
from dashboard.claude_requests import (
    InvalidFields,
    claude_services,
    json_object,
    owner_of,
    owner_scope,
)
from dashboard.context import dashboard

# Large batches go to the Message Batches API; their prompts come in one body.
MAX_BODY_BYTES = 32 * 1024 * 1024
BATCH_FIELDS = ("requests", "webhook_url", "name", "model", "max_tokens", "priority")
EXAMPLE = '{"requests": [{"prompt": "..."}, ...]}'


def progress_of(request: Request) -> dict[str, Any]:
    batch_id = request.path_params["id"]
    found = batch_progress(batch_id, owner_scope(request), services=claude_services(request))
    if found is None:
        raise HTTPException(404, f"There is no Claude batch {batch_id!r}.")
    return found


def _submit(request: Request, body: dict[str, Any]) -> str:
    problems = {
        name: f"is not a field of a batch (known: {', '.join(BATCH_FIELDS)})"
        for name in body
        if name not in BATCH_FIELDS
    }
    if problems:
        raise InvalidFields(problems)
    prompts = body.pop("requests", None)
    try:
        batch_id = submit_batch(
            prompts, **body, owner=owner_of(request), services=claude_services(request)
        )
    except RequestValidationError as exc:
        raise InvalidFields(exc.errors) from None
    detail = {"requests": len(prompts), "name": body.get("name")}
    dashboard(request).record(request, "claude.batch.submit", batch_id, **detail)
    return batch_id


def _cancel(request: Request) -> dict[str, Any]:
    progress = progress_of(request)  # 404 before anything is cancelled
    batch_id = progress["id"]
    try:
        cancelled = cancel_batch(batch_id, owner_scope(request), services=claude_services(request))
    except Exception as exc:
        import anthropic  # loaded only when the cancel failed: it takes seconds

        if not isinstance(exc, anthropic.APIError):
            raise
        raise HTTPException(502, f"Anthropic could not cancel the Message Batch: {exc}") from exc
    if cancelled == 0:
        raise HTTPException(409, f"Batch {batch_id} has no request left to cancel.")
    dashboard(request).record(request, "claude.batch.cancel", batch_id, cancelled=cancelled)
    return {"cancelled": cancelled, "progress": progress_of(request)}


@requires("operator")
async def create_batch(request: Request) -> Response:
    """Every prompt is checked before anything is queued: one bad prompt queues none.
    ---
    summary: Submit a batch of Claude requests
    description: >
      Needs the operator role; written to the audit log. One request per prompt, all
      sharing the batch's id (and model, max_tokens and priority unless a prompt names
      its own model or max_tokens). Below [claude] batch_api_threshold prompts the
      requests run as Skyline jobs; from it on, through Anthropic's Message Batches API
      (half the price, answered within 24 hours). The webhook gets one event when the
      whole batch has finished.
    tags: [claude]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            required: [requests]
            additionalProperties: false
            properties:
              requests:
                type: array
                minItems: 1
                maxItems: 100000
                items:
                  type: object
                  additionalProperties: false
                  description: A prompt or messages, as POST /api/claude/requests takes them.
                  properties:
                    prompt: {type: string, maxLength: 50000}
                    messages: {type: array, items: {type: object}}
                    system: {type: string}
                    model: {type: string}
                    max_tokens: {type: integer, minimum: 1, maximum: 200000}
                    temperature: {type: number, minimum: 0, maximum: 1}
              name: {type: string, maxLength: 255}
              webhook_url: {type: string, format: uri}
              model: {type: string}
              max_tokens: {type: integer, minimum: 1, maximum: 200000, default: 1024}
              priority: {type: string, enum: [high, normal, low], default: normal}
    responses:
      "202":
        description: Queued; follow it at the Location.
        headers:
          Location: {description: The batch's progress URL., schema: {type: string}}
        content:
          application/json:
            schema:
              type: object
              properties: {id: {type: string}}
      "400": {$ref: "#/components/responses/BadRequest"}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "403": {$ref: "#/components/responses/Forbidden"}
      "413": {description: The body is larger than 32 MiB.}
      "422":
        description: >
          Some fields are not valid; fields names each, a prompt's as requests[3].prompt
          (at most 100 are named).
        content:
          application/json:
            schema:
              type: object
              properties:
                error: {type: string}
                fields: {type: object, additionalProperties: {type: string}}
    """
    body = await json_object(request, MAX_BODY_BYTES, EXAMPLE)
    try:
        batch_id = await run_in_threadpool(_submit, request, body)
    except InvalidFields as exc:
        return exc.response()
    location = f"/api/claude/batches/{batch_id}"
    return ApiResponse({"id": batch_id}, status_code=202, headers={"Location": location})


@requires("viewer")
def get_batch(request: Request) -> ApiResponse:
    """
    ---
    summary: A Claude batch's progress
    description: >
      Its requests by status, how many in all, and the finished share. A token sees only
      the batches it submitted: any other id answers 404.
    tags: [claude]
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    responses:
      "200":
        description: The progress.
        content:
          application/json:
            schema:
              type: object
              properties:
                id: {type: string}
                pending: {type: integer}
                processing: {type: integer}
                completed: {type: integer}
                failed: {type: integer}
                cancelled: {type: integer}
                expired: {type: integer}
                total: {type: integer}
                percentage:
                  type: number
                  description: Finished requests of all, 0-100 (100 for a batch with none).
                finished: {type: boolean}
                mode: {type: string, enum: [jobs, message_batches]}
                message_batch_id: {type: [string, "null"]}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "404": {$ref: "#/components/responses/NotFound"}
    """
    return ApiResponse(progress_of(request))


@requires("operator")
def delete_batch(request: Request) -> ApiResponse:
    """
    ---
    summary: Cancel a Claude batch
    description: >
      Needs the operator role; written to the audit log. Its pending requests are
      cancelled; in a Message Batch, Anthropic is asked to cancel, and the requests it
      had not answered become cancelled when it has ended.
    tags: [claude]
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    responses:
      "200":
        description: How many requests were cancelled, and the progress after.
        content:
          application/json:
            schema:
              type: object
              properties:
                cancelled: {type: integer}
                progress:
                  type: object
                  description: As GET /api/claude/batches/{id}.
      "401": {$ref: "#/components/responses/Unauthorized"}
      "403": {$ref: "#/components/responses/Forbidden"}
      "404": {$ref: "#/components/responses/NotFound"}
      "409":
        description: No request of the batch was left to cancel.
        content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}
      "502":
        description: Anthropic could not be told to cancel the Message Batch.
        content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}
    """
    return ApiResponse(_cancel(request))


routes = [
    Route("/api/claude/batches", create_batch, methods=["POST"]),
    Route("/api/claude/batches/{id}", get_batch, methods=["GET"]),
    Route("/api/claude/batches/{id}", delete_batch, methods=["DELETE"]),
]
