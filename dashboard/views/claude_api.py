"""Claude requests over HTTP, under /api/claude: submit, read, list and cancel them.

A token's requests carry its name as their owner, and it sees no one else's: another
owner's request answers 404, as a missing one does. Creating and cancelling need the
operator role, reading the viewer role. The conventions are in ``dashboard/api.py``.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from core.claude.submission import RequestValidationError, submit
from dashboard.api import ApiResponse, numbered
from dashboard.auth import requires
from dashboard.claude_requests import (
    InvalidFields,
    cancel_request,
    claude_services,
    found_request,
    json_object,
    owner_of,
    owner_scope,
    request_body,
    status_filter,
    summary_body,
    unknown_fields,
)
from dashboard.context import dashboard
from dashboard.paging import numbered_page

MAX_BODY_BYTES = 8 * 1024 * 1024  # a prompt's 50,000 characters leave room for content blocks
REQUEST_FIELDS = (
    "prompt",
    "messages",
    "system",
    "model",
    "max_tokens",
    "temperature",
    "priority",
    "webhook_url",
)


def _submit(request: Request, body: dict[str, Any]) -> str:
    problems = unknown_fields(body, REQUEST_FIELDS)
    if problems:
        raise InvalidFields(problems)
    services = claude_services(request)
    try:
        request_id = submit(**body, owner=owner_of(request), services=services)
    except RequestValidationError as exc:
        raise InvalidFields(exc.errors) from None
    detail = {
        "model": body.get("model") or services.claude.default_model,
        "priority": body.get("priority", "normal"),
    }
    dashboard(request).record(request, "claude.submit", request_id, **detail)
    return request_id


@requires("operator")
async def create_request(request: Request) -> Response:
    """The request is queued at once; poll its Location, or give a webhook_url.
    ---
    summary: Submit a Claude request
    description: >
      Needs the operator role; written to the audit log. Give a prompt (one user message)
      or messages (the Messages API's list), not both. The request belongs to the token
      (by its name) or the signed-in user that sends it. An identical request answered
      within the cache TTL is answered from the cache.
    tags: [claude]
    requestBody:
      required: true
      content:
        application/json:
          schema:
            type: object
            additionalProperties: false
            properties:
              prompt: {type: string, maxLength: 50000}
              messages:
                type: array
                minItems: 1
                items:
                  type: object
                  required: [role, content]
                  properties:
                    role: {type: string, enum: [user, assistant]}
                    content: {type: [string, array]}
              system: {type: string, maxLength: 50000}
              model:
                type: string
                description: One of [claude.models]; the default_model when left out.
              max_tokens: {type: integer, minimum: 1, maximum: 200000, default: 1024}
              temperature: {type: number, minimum: 0, maximum: 1, default: 1}
              priority: {type: string, enum: [high, normal, low], default: normal}
              webhook_url:
                type: string
                format: uri
                description: Sent a signed event when the request finishes.
    responses:
      "202":
        description: Queued.
        headers:
          Location: {description: The request's URL., schema: {type: string}}
        content:
          application/json:
            schema:
              type: object
              properties: {id: {type: string}, status: {type: string, enum: [pending]}}
      "400": {$ref: "#/components/responses/BadRequest"}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "403": {$ref: "#/components/responses/Forbidden"}
      "413": {description: The body is larger than 8 MiB.}
      "422":
        description: Some fields are not valid; fields says what is wrong with each.
        content:
          application/json:
            schema:
              type: object
              properties:
                error: {type: string}
                fields: {type: object, additionalProperties: {type: string}}
    """
    body = await json_object(request, MAX_BODY_BYTES, '{"prompt": "..."}')
    try:
        request_id = await run_in_threadpool(_submit, request, body)
    except InvalidFields as exc:
        return exc.response()
    location = f"/api/claude/requests/{request_id}"
    return ApiResponse(
        {"id": request_id, "status": "pending"}, status_code=202, headers={"Location": location}
    )


@requires("viewer")
def list_requests(request: Request) -> ApiResponse:
    """
    ---
    summary: Claude requests, newest first
    description: A token lists the requests it submitted; a signed-in user lists all.
    tags: [claude]
    parameters:
      - name: status
        in: query
        required: false
        schema:
          type: string
          enum: [pending, processing, completed, failed, cancelled, expired]
      - {name: batch_id, in: query, required: false, schema: {type: string}}
      - {name: page, in: query, required: false, schema: {type: integer, minimum: 1}}
      - {name: per_page, in: query, required: false, schema: {type: integer, minimum: 1}}
    responses:
      "200":
        description: >
          A page of requests, each as GET /api/claude/requests/{id} without owner, system,
          messages, max_tokens, temperature, webhook_url and response.
        content:
          application/json:
            schema:
              type: object
              properties:
                data: {type: array, items: {type: object}}
                page: {$ref: "#/components/schemas/NumberedPage"}
      "400": {$ref: "#/components/responses/BadRequest"}
      "401": {$ref: "#/components/responses/Unauthorized"}
    """
    store = claude_services(request).requests
    chosen = dict(
        owner=owner_scope(request),
        status=status_filter(request),
        batch_id=request.query_params.get("batch_id") or None,
    )
    page = numbered_page(request, store.count(**chosen))
    records = store.list(**chosen, limit=page.per_page, offset=page.offset)
    return numbered([summary_body(record) for record in records], page)


@requires("viewer")
def get_request(request: Request) -> ApiResponse:
    """
    ---
    summary: One Claude request
    description: >
      Its status, what was asked, the response, usage, cost and durations. A token sees
      only the requests it submitted: any other id answers 404.
    tags: [claude]
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    responses:
      "200":
        description: The request.
        content:
          application/json:
            schema:
              type: object
              properties:
                id: {type: string}
                owner: {type: string}
                status:
                  type: string
                  enum: [pending, processing, completed, failed, cancelled, expired]
                priority: {type: string, enum: [high, normal, low]}
                model: {type: string}
                batch_id: {type: [string, "null"]}
                system: {type: [string, "null"]}
                messages: {type: array, items: {type: object}}
                max_tokens: {type: integer}
                temperature: {type: number}
                webhook_url: {type: [string, "null"]}
                response:
                  type: [object, "null"]
                  properties:
                    text: {type: string}
                    stop_reason: {type: [string, "null"]}
                usage:
                  type: object
                  properties:
                    input_tokens: {type: integer}
                    output_tokens: {type: integer}
                    cache_creation_input_tokens: {type: integer}
                    cache_read_input_tokens: {type: integer}
                cost_usd: {type: number}
                cached: {type: boolean, description: Answered from the response cache.}
                attempts: {type: integer}
                times_rate_limited: {type: integer, description: 429 answers.}
                times_overloaded: {type: integer, description: 529 answers.}
                error: {type: [string, "null"]}
                created_at: {type: string, format: date-time}
                started_at: {type: [string, "null"], format: date-time}
                finished_at: {type: [string, "null"], format: date-time}
                durations:
                  type: object
                  description: Up to now while the request is unfinished.
                  properties:
                    queued_ms: {type: number}
                    running_ms: {type: [number, "null"]}
                    total_ms: {type: number}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "404": {$ref: "#/components/responses/NotFound"}
    """
    return ApiResponse(request_body(found_request(request)))


@requires("operator")
def delete_request(request: Request) -> ApiResponse:
    """
    ---
    summary: Cancel a Claude request
    description: >
      Needs the operator role; written to the audit log. A pending or processing request
      is cancelled (an answer arriving later is not stored); a finished one answers 409.
    tags: [claude]
    parameters:
      - {name: id, in: path, required: true, schema: {type: string}}
    responses:
      "200":
        description: The cancelled request, as GET /api/claude/requests/{id}.
        content:
          application/json:
            schema: {type: object}
      "401": {$ref: "#/components/responses/Unauthorized"}
      "403": {$ref: "#/components/responses/Forbidden"}
      "404": {$ref: "#/components/responses/NotFound"}
      "409":
        description: The request had finished already.
        content: {application/json: {schema: {$ref: "#/components/schemas/Error"}}}
    """
    record = found_request(request)
    cancelled = cancel_request(request, record)
    if cancelled is None:
        current = claude_services(request).requests.get(record.id) or record
        only = "only pending or processing requests can be cancelled"
        raise HTTPException(409, f"Request {record.id} is {current.status.value}: {only}.")
    return ApiResponse(request_body(cancelled))


routes = [
    Route("/api/claude/requests", create_request, methods=["POST"]),
    Route("/api/claude/requests", list_requests, methods=["GET"]),
    Route("/api/claude/requests/{id}", get_request, methods=["GET"]),
    Route("/api/claude/requests/{id}", delete_request, methods=["DELETE"]),
]
